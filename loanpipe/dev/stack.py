"""The embedded local stack: real parts on loopback, started and stopped by the project.

* **master node**: a real OpenSSH server on 127.0.0.1:2222 with its own user (``loanpipe``), key
  authentication and a pinned host key; the node has its own Python environment (``/opt/loanpipe-node/venv``,
  Debian's Python 3.11 with the jobs' requirements: PySpark, CatBoost, ...) and runs Spark in local mode.
* **mail**: a real SMTP server (aiosmtpd) that stores every message as a file in ``var/stack/mail/Maildir/new``.
* **Airflow**: its own api-server (UI on http://127.0.0.1:28080), scheduler, dag-processor and triggerer, with
  connections from ``AIRFLOW_CONN_*`` environment variables.
* **object storage**: a real S3-compatible server (MinIO, built by ``scripts/install_minio.sh``) on
  127.0.0.1:9000 with its own keys (``var/stack/s3/credentials.json``, mode 600) and the bucket ``loanpipe``;
  its web console on :9001.
* **the lake**: ``var/stack/lake``, owned by the node's user (the jobs write it; Airflow reads the summaries), or
  in S3 mode (``--storage s3`` / ``LOANPIPE_STACK_STORAGE=s3``) ``s3a://loanpipe/lake`` on that server. The node
  reads its S3 keys from its own ``~/.config/loanpipe/s3.env``; Airflow from the connection ``loanpipe_s3``.

    python -m loanpipe.dev.stack start [--no-airflow] [--storage local|s3] | stop | status | env | run

Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from loanpipe.core.config import PROJECT_DIR

STACK_DIR = Path(os.environ.get("LOANPIPE_STACK_DIR", PROJECT_DIR / "var" / "stack"))
NODE_USER = "loanpipe"
NODE_HOME = Path("/home") / NODE_USER
NODE_VENV = Path(os.environ.get("LOANPIPE_NODE_VENV", "/opt/loanpipe-node/venv"))
NODE_PYTHON = "/usr/bin/python3.11"
SSH_PORT = int(os.environ.get("LOANPIPE_SSH_PORT", "2222"))
SMTP_PORT = int(os.environ.get("LOANPIPE_SMTP_PORT", "1025"))
API_PORT = int(os.environ.get("LOANPIPE_AIRFLOW_PORT", "28080"))
S3_PORT = int(os.environ.get("LOANPIPE_S3_PORT", "9000"))
S3_BUCKET = "loanpipe"
S3_ROOT = f"s3a://{S3_BUCKET}/lake"
NODE_S3_ENV = NODE_HOME / ".config" / "loanpipe" / "s3.env"
STORAGE_MODES = ("local", "s3")
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
# Every service listens on loopback only. Airflow's log servers (scheduler :8793, triggerer :8794) bind every
# interface and cannot be told otherwise; on one machine the api-server reads the task logs from the files
# directly, so they are not started.
SERVICE_ARGS = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}
MAIL_TO = "risk-team@localhost"


def venv_bin(name: str) -> str:
    return str(PROJECT_DIR / ".venv" / "bin" / name)


def java_home() -> str:
    return os.environ.get("JAVA_HOME") or str(Path(os.path.realpath(shutil.which("java") or "/usr/bin/java")).parent.parent)


def paths() -> dict[str, Path]:
    return {
        "ssh": STACK_DIR / "ssh", "mail": STACK_DIR / "mail" / "Maildir", "airflow": STACK_DIR / "airflow",
        "pids": STACK_DIR / "pids", "logs": STACK_DIR / "logs", "lake": STACK_DIR / "lake",
        "dist": STACK_DIR / "dist", "conf": STACK_DIR / "conf.yaml",
        "s3": STACK_DIR / "s3" / "data", "s3_credentials": STACK_DIR / "s3" / "credentials.json",
    }


def _run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(port):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not open 127.0.0.1:{port} within {seconds:.0f} s; see {paths()['logs']}")


# -- the master node -------------------------------------------------------------------------------------

def setup_node() -> None:
    """The node's user, its Python environment and its release folder (idempotent)."""
    try:
        pwd.getpwnam(NODE_USER)
    except KeyError:
        _run(["useradd", "-m", "-s", "/bin/bash", NODE_USER])
    _run(["usermod", "-p", "*", NODE_USER])  # key-only login (UsePAM no treats '!' as locked)
    reqs = PROJECT_DIR / "requirements-jobs.txt"
    stamp = NODE_VENV / ".loanpipe-requirements"
    digest = hashlib.sha256(reqs.read_bytes() + (PROJECT_DIR / "requirements.lock").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        NODE_VENV.parent.mkdir(parents=True, exist_ok=True)
        if not (NODE_VENV / "bin" / "python").exists():
            _run([NODE_PYTHON, "-m", "venv", str(NODE_VENV)])
        pip = [str(NODE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        _run([*pip, "--upgrade", "pip"])
        _run([*pip, "-r", str(reqs), "-c", str(PROJECT_DIR / "requirements.lock")])
        stamp.write_text(digest)
    remote = NODE_HOME / "loanpipe"
    remote.mkdir(parents=True, exist_ok=True)
    shutil.chown(remote, NODE_USER, NODE_USER)


def node_spark_home() -> str:
    return str(NODE_VENV / "lib" / "python3.11" / "site-packages" / "pyspark")


def give_lake_to_node() -> None:
    """The jobs run as the node's user: it owns the lake (and must be able to reach it)."""
    lake = paths()["lake"]
    lake.mkdir(parents=True, exist_ok=True)
    _run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(lake)])
    check = subprocess.run(["su", NODE_USER, "-s", "/bin/sh", "-c", f"test -w {lake}"], capture_output=True)
    if check.returncode != 0:
        raise RuntimeError(f"the node user {NODE_USER!r} cannot write {lake}: a folder above it is not "
                           "traversable by others; put the stack under a world-traversable path (LOANPIPE_STACK_DIR)")


def setup_ssh() -> dict[str, str]:
    """Client key, host key, authorized_keys and sshd_config under var/stack/ssh (idempotent)."""
    d = paths()["ssh"]
    d.mkdir(parents=True, exist_ok=True)
    for key in ("client_ed25519", "host_ed25519"):
        if not (d / key).exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"loanpipe-{key}", "-f", str(d / key)])
    # The node user's own ~/.ssh/authorized_keys (sshd reads it as that user); other stacks' keys stay.
    ssh_dir = NODE_HOME / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    pub = (d / "client_ed25519.pub").read_text().strip()
    keys = auth.read_text().splitlines() if auth.exists() else []
    if pub not in keys:
        auth.write_text("\n".join([*keys, pub]) + "\n")
    auth.chmod(0o600)
    _run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(ssh_dir)])
    (d / "sshd_config").write_text(
        f"Port {SSH_PORT}\nListenAddress 127.0.0.1\nHostKey {d / 'host_ed25519'}\nPidFile {paths()['pids'] / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        f"AuthorizedKeysFile .ssh/authorized_keys\nAllowUsers {NODE_USER}\n"
        "Subsystem sftp internal-sftp\nLogLevel INFO\nClientAliveInterval 15\nClientAliveCountMax 4\n"
    )
    host_key = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    return {"key_file": str(d / "client_ed25519"), "host_key": host_key}


# -- configuration the stack's Airflow and jobs run with --------------------------------------------------

def catboost_spark_resolves() -> bool:
    from loanpipe.core.session import jvm_status

    return jvm_status().get("catboost", {}).get("status") == "ok"


def storage_mode(requested: str | None = None) -> str:
    """local (a folder under var/stack) or s3 (the bucket on the stack's S3 server)."""
    mode = requested or os.environ.get("LOANPIPE_STACK_STORAGE") or "local"
    if mode not in STORAGE_MODES:
        raise ValueError(f"storage mode must be one of {STORAGE_MODES} (got {mode!r}; LOANPIPE_STACK_STORAGE)")
    return mode


def s3_endpoint() -> str:
    return f"http://127.0.0.1:{S3_PORT}"


def storage_settings(mode: str) -> dict[str, Any]:
    if mode == "s3":
        return {"root": S3_ROOT, "s3_endpoint": s3_endpoint(), "s3_conn_id": "loanpipe_s3"}
    return {"root": str(paths()["lake"])}


def write_config(mode: str | None = None) -> Path:
    """var/stack/conf.yaml: the lake (a folder under var/stack or the stack's bucket), the node's environment,
    schedules to the minute."""
    p = paths()
    mode = storage_mode(mode)
    store = storage_settings(mode)
    conf = {
        "storage": store,
        "cluster": {
            "ssh_conn_id": "loanpipe_ssh",
            "remote_dir": str(NODE_HOME / "loanpipe"),
            "python": str(NODE_VENV / "bin" / "python"),
            "spark_submit": f"{node_spark_home()}/bin/spark-submit",
            "master": "local[2]",
            "driver_memory": "4g",
            # --packages only when the artifact resolves here (Maven Central may not serve ai.catboost)
            "packages": catboost_spark_resolves(),
            "env_file": str(NODE_S3_ENV),
            "env": {
                **{f"LOANPIPE__STORAGE__{k.upper()}": str(v) for k, v in store.items()},
                "LOANPIPE__SPARK__MASTER": "null",
                "SPARK_HOME": node_spark_home(),
                "JAVA_HOME": java_home(),
                "SPARK_LOCAL_IP": "127.0.0.1",
            },
        },
        "airflow": {"retries": 1, "retry_delay_seconds": 5, "max_retry_delay_seconds": 10,
                    "execution_timeout_minutes": 30, "batch_wait_timeout_minutes": 5},
    }
    p["conf"].parent.mkdir(parents=True, exist_ok=True)
    p["conf"].write_text("# written by `python -m loanpipe.dev.stack`; do not edit\n" + yaml.safe_dump(conf, sort_keys=False))
    return p["conf"]


def env() -> dict[str, str]:
    """Environment for Airflow's processes, `airflow` commands and the end-to-end tests."""
    p = paths()
    ssh = setup_ssh() if not (p["ssh"] / "host_ed25519.pub").exists() else {
        "key_file": str(p["ssh"] / "client_ed25519"),
        "host_key": " ".join((p["ssh"] / "host_ed25519.pub").read_text().split()[:2]),
    }
    ssh_conn = {"conn_type": "ssh", "host": "127.0.0.1", "port": SSH_PORT, "login": NODE_USER,
                "extra": {"key_file": ssh["key_file"], "host_key": ssh["host_key"], "conn_timeout": "10"}}
    keys = s3_credentials()
    s3_conn = {"conn_type": "aws", "login": keys["access_key"], "password": keys["secret_key"],
               "extra": {"endpoint_url": s3_endpoint(), "region_name": "ru-central1"}}
    smtp_conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": SMTP_PORT,
                 "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "loanpipe@localhost",
                           "timeout": 10, "retry_limit": 1}}
    return {
        "AIRFLOW_HOME": str(p["airflow"]),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{API_PORT}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{API_PORT}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__CORE__FERNET_KEY": fernet_key(),
        "AIRFLOW_CONN_LOANPIPE_SSH": json.dumps(ssh_conn),
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp_conn),
        "AIRFLOW_CONN_LOANPIPE_S3": json.dumps(s3_conn),
        "LOANPIPE_MAIL_TO": MAIL_TO,
        "LOANPIPE_CONFIG": str(p["conf"]),
        "LOANPIPE_DIST_DIR": str(p["dist"]),
        "JAVA_HOME": java_home(),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PATH": f"{PROJECT_DIR / '.venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


# -- object storage -------------------------------------------------------------------------------------

def s3_credentials() -> dict[str, str]:
    """The local S3 server's keys: generated once per stack, kept in a file only its owner can read."""
    f = paths()["s3_credentials"]
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        keys = {"access_key": "loanpipe" + secrets.token_hex(6), "secret_key": secrets.token_urlsafe(30)}
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh)
    return json.loads(f.read_text())


def s3_env() -> dict[str, str]:
    """The keys as the standard AWS environment variables (for commands run by hand against the stack's S3)."""
    keys = s3_credentials()
    return {"AWS_ACCESS_KEY_ID": keys["access_key"], "AWS_SECRET_ACCESS_KEY": keys["secret_key"]}


def minio_bin() -> str:
    out = subprocess.run([str(PROJECT_DIR / "scripts" / "install_minio.sh")], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"no S3 server binary: {out.stderr.strip()[-500:]}")
    return out.stdout.strip()


def write_node_s3_env() -> None:
    """The node's own copy of the S3 keys (sourced by the SSH task before spark-submit; mode 600)."""
    keys = s3_credentials()
    NODE_S3_ENV.parent.mkdir(parents=True, exist_ok=True)
    NODE_S3_ENV.write_text(f"AWS_ACCESS_KEY_ID={keys['access_key']}\nAWS_SECRET_ACCESS_KEY={keys['secret_key']}\n")
    NODE_S3_ENV.chmod(0o600)
    _run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(NODE_HOME / ".config")])


def start_s3() -> None:
    keys = s3_credentials()
    data = paths()["s3"]
    data.mkdir(parents=True, exist_ok=True)
    _start("minio", [minio_bin(), "server", str(data), "--address", f"127.0.0.1:{S3_PORT}",
                     "--console-address", f"127.0.0.1:{S3_PORT + 1}", "--quiet"],
           {"MINIO_ROOT_USER": keys["access_key"], "MINIO_ROOT_PASSWORD": keys["secret_key"],
            "MINIO_BROWSER": "on", "MINIO_UPDATE": "off"})
    _wait_port(S3_PORT, "the S3 server (MinIO)")
    ensure_bucket()
    write_node_s3_env()


def ensure_bucket(bucket: str = S3_BUCKET) -> None:
    """Create the stack's bucket once the server answers (idempotent)."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from loanpipe.core.config import StorageConfig
    from loanpipe.core.storage import S3Credentials, s3_client

    keys = s3_credentials()
    client = s3_client(StorageConfig(root=S3_ROOT, s3_endpoint=s3_endpoint()),
                       S3Credentials(keys["access_key"], keys["secret_key"]))
    deadline = time.monotonic() + 60
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                client.create_bucket(Bucket=bucket)
                return
            if time.monotonic() > deadline:
                raise
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)  # MinIO answers 503 for a moment while it initialises


# -- processes ----------------------------------------------------------------------------------------

def _start(name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
    p = paths()
    p["pids"].mkdir(parents=True, exist_ok=True)
    p["logs"].mkdir(parents=True, exist_ok=True)
    if _alive(name):
        return
    log = open(p["logs"] / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(extra_env or {})}, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    (p["pids"] / f"{name}.pid").write_text(str(proc.pid))


def _pid(name: str) -> int | None:
    f = paths()["pids"] / f"{name}.pid"
    try:
        return int(f.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(name: str) -> bool:
    pid = _pid(name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _stop(name: str, sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
    pid = _pid(name)
    if pid is None:
        return
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pid, s)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if not _group_alive(pid):
            break
    (paths()["pids"] / f"{name}.pid").unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:  # reap our own exited children first: a zombie still "exists" for killpg
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def start_sshd() -> None:
    Path("/run/sshd").mkdir(exist_ok=True)
    setup_ssh()
    _start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(paths()["ssh"] / "sshd_config")])
    _wait_port(SSH_PORT, "sshd")


def start_smtp() -> None:
    paths()["mail"].parent.mkdir(parents=True, exist_ok=True)
    _start("smtp", [venv_bin("python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{SMTP_PORT}",
                    "-c", "aiosmtpd.handlers.Mailbox", str(paths()["mail"])])
    _wait_port(SMTP_PORT, "the SMTP server")


def fernet_key() -> str:
    """The stack's Fernet key (connections stored in Airflow's database are encrypted with it); mode 600."""
    f = paths()["airflow"].parent / "fernet.key"
    if not f.exists():
        from cryptography.fernet import Fernet

        f.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(Fernet.generate_key().decode())
    return f.read_text().strip()


def airflow_db_migrate(e: dict[str, str]) -> None:
    Path(e["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    _run([venv_bin("airflow"), "db", "migrate"], env={**os.environ, **e}, timeout=600)


def import_connections(e: dict[str, str]) -> None:
    """Also store the connections in Airflow's database (encrypted with the stack's Fernet key), so the UI lists
    them (with secrets masked). The AIRFLOW_CONN_* variables hold the same values and take precedence."""
    conns = {}
    for key, value in e.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(value)
            conn["extra"] = json.dumps(conn.get("extra", {}))
            conns[key[len("AIRFLOW_CONN_"):].lower()] = conn
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=paths()["airflow"])  # mode 600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(conns, fh)
        _run([venv_bin("airflow"), "connections", "import", "--overwrite", tmp], env={**os.environ, **e}, timeout=300)
    finally:
        os.unlink(tmp)


def start_airflow() -> None:
    e = env()
    airflow_db_migrate(e)
    import_connections(e)
    for service in AIRFLOW_SERVICES:
        _start(f"airflow-{service}", [venv_bin("airflow"), service, *SERVICE_ARGS.get(service, [])], e)
    _wait_port(API_PORT, "the Airflow api-server", 120)


def start(airflow: bool = True, mode: str | None = None) -> dict[str, Any]:
    setup_node()
    write_config(mode)
    start_sshd()
    start_smtp()
    if storage_mode(mode) == "s3":  # MinIO is installed by `make setup-s3` and only S3 mode needs it
        start_s3()
    if airflow:
        start_airflow()
    return status()


def stop() -> dict[str, Any]:
    for service in AIRFLOW_SERVICES:
        _stop(f"airflow-{service}", signal.SIGINT, wait=20)
    _stop("smtp")
    _stop("sshd")
    _stop("minio")
    return status()


SERVICES = ("sshd", "smtp", "minio", *(f"airflow-{s}" for s in AIRFLOW_SERVICES))


def listening() -> list[dict[str, Any]]:
    """Every socket a running service of the stack (any process of its group) listens on."""
    import psutil

    groups = {pid: name for name in SERVICES if _alive(name) and (pid := _pid(name)) is not None}
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            service = groups.get(os.getpgid(proc.pid))
            if service is None:
                continue
            found += [{"service": service, "pid": proc.pid, "ip": c.laddr.ip, "port": c.laddr.port}
                      for c in proc.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        except (psutil.Error, ProcessLookupError):
            continue
    return found


def status() -> dict[str, Any]:
    return {
        "services": {n: ("running" if _alive(n) else "stopped") for n in SERVICES},
        "ssh": f"{NODE_USER}@127.0.0.1:{SSH_PORT}",
        "mail": str(paths()["mail"] / "new"),
        "airflow_ui": f"http://127.0.0.1:{API_PORT}",
        "s3": f"{s3_endpoint()} (console http://127.0.0.1:{S3_PORT + 1}; keys in {paths()['s3_credentials']})",
        "lake": _configured_root(),
        "config": str(paths()["conf"]),
    }


def _configured_root() -> str:
    try:
        return yaml.safe_load(paths()["conf"].read_text())["storage"]["root"]
    except (OSError, KeyError, TypeError):
        return str(paths()["lake"])


def stack_lake() -> Any:
    """The lake the stack is configured for, opened with the stack's keys."""
    from loanpipe.core.config import load_config
    from loanpipe.core.storage import S3Credentials, open_lake

    cfg = load_config(str(paths()["conf"]))
    keys = s3_credentials()
    return open_lake(cfg.storage, S3Credentials(keys["access_key"], keys["secret_key"]) if cfg.storage.is_s3 else None)


# -- the REST API (what `make run` and the tests use to drive the real scheduler) ----------------------------

def api(method: str, path: str, body: dict | None = None, token: str | None = None, port: int = API_PORT) -> Any:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def api_token(port: int = API_PORT) -> str:
    """A token from the local stack's simple auth manager (all users are admins on this loopback-only stack)."""
    return api("GET", "/auth/token", port=port)["access_token"]


def trigger_and_wait(dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 1800, port: int = API_PORT,
                     log=print) -> dict[str, Any]:  # noqa: ANN001
    """Unpause ``dag_id``, trigger a manual run with ``conf`` through the REST API, wait for it to finish."""
    import urllib.error

    token = api_token(port)
    deadline = time.monotonic() + 300
    while True:  # the dag-processor has to parse the DAG first
        try:
            api("GET", f"/api/v2/dags/{dag_id}", token=token, port=port)
            break
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{dag_id} did not appear in Airflow within 300 s; see {paths()['logs']}") from None
            time.sleep(2)
    api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token, port)
    run = api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}, token, port)
    run_id = run["dag_run_id"]
    log(f"triggered {dag_id} run {run_id} with {conf or {}}")
    deadline = time.monotonic() + timeout
    state = run.get("state")
    while state not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(3)
        state = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token, port=port)["state"]
    tis = api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", token=token, port=port)
    return {"dag_id": dag_id, "run_id": run_id, "state": state,
            "tasks": {t["task_id"]: t["state"] for t in tis.get("task_instances", [])}}


def ingest_demo_lake(rows: int | None = None) -> dict[str, Any]:
    """The demo lake under var/stack/lake (skipped when the same data is there), owned by the node's user."""
    e = env()
    cmd = [venv_bin("python"), "-m", "loanpipe.jobs.ingest"] + (["--rows", str(rows)] if rows else [])
    out = subprocess.run(cmd, env={**os.environ, **e, **s3_env()}, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"ingest failed: {out.stderr.strip().splitlines()[-1:]}")
    if not _configured_root().startswith("s3a://"):
        give_lake_to_node()
    return json.loads(out.stdout)


def run_pipeline(run_date: str, keep: bool = False, mode: str | None = None, rows: int | None = None) -> dict[str, Any]:
    """The README's main command: stack up, demo lake, dag_new_data then dag_app for ``run_date`` through the
    real scheduler, then where the scores, artifacts and email are."""
    from loanpipe.core.storage import parse_run_date

    parse_run_date(run_date)
    started = time.monotonic()
    print("stack: starting sshd (master node), SMTP server, Airflow ...", flush=True)
    start(airflow=True, mode=mode)
    try:
        lake_info = ingest_demo_lake(rows)
        print(f"lake: {lake_info['paths']['train']} ... ({lake_info['rows']} rows"
              f"{', already there' if 'skipped' in lake_info else ''})", flush=True)
        results = []
        for dag_id in ("dag_new_data", "dag_app"):
            result = trigger_and_wait(dag_id, {"run_date": run_date})
            print(f"{dag_id}: {result['state']} {result['tasks']}", flush=True)
            results.append(result)
            if result["state"] != "success":
                raise RuntimeError(f"{dag_id} {result['state']}; task logs under {paths()['airflow'] / 'logs'}")
    finally:
        if not keep:
            stop()
    p = paths()
    box = p["mail"] / "new"
    mails = sorted(box.iterdir(), key=lambda f: f.stat().st_mtime) if box.is_dir() else []
    from loanpipe.core import catalog

    lake = stack_lake()
    summary = lake.read_json(catalog.run_artifact(lake, run_date, catalog.RUN_SUMMARY))
    return {
        "run_date": run_date,
        "storage": lake.describe(),
        "status": summary["status"],
        "auc": summary["evaluation"]["roc_auc"],
        "oracle_auc": summary["evaluation"]["oracle_auc"],
        "challenger": summary["challenger"]["reason"],
        "scores": summary["scores"]["path"],
        "artifacts": catalog.run_artifact(lake, run_date),
        "emails": [str(m) for m in mails[-2:]],
        "airflow_ui": f"http://127.0.0.1:{API_PORT}" + ("" if keep else " (stopped; `make stack-up` keeps it up)"),
        "seconds": round(time.monotonic() - started, 1),
        "dag_runs": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "run", "scores"])
    parser.add_argument("--date", help="run: the run date (default: today, UTC); scores: the date (default: latest)")
    parser.add_argument("--out", help="scores: CSV file to write (default: stdout)")
    parser.add_argument("--keep", action="store_true", help="run: leave the stack up afterwards")
    parser.add_argument("--json", action="store_true", help="env: print a JSON object instead of export lines")
    parser.add_argument("--no-airflow", action="store_true", help="start only sshd, the SMTP and the S3 server")
    parser.add_argument("--storage", choices=STORAGE_MODES,
                        help="start/run: the lake in a local folder or in the stack's S3 bucket "
                             "(default: $LOANPIPE_STACK_STORAGE or local)")
    parser.add_argument("--with-lake", action="store_true", help="start: also ingest the demo lake (if absent)")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except (RuntimeError, subprocess.CalledProcessError, ValueError) as exc:  # StorageError is a RuntimeError
        detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else ""
        print(f"stack {args.command} failed: {exc} {detail or ''}".strip(), file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "start":
        state = start(airflow=not args.no_airflow, mode=args.storage)
        if args.with_lake:
            ingest_demo_lake()
        print(json.dumps(state, indent=2))
    elif args.command == "run":
        import datetime as dt

        print(json.dumps(run_pipeline(args.date or dt.datetime.now(dt.UTC).date().isoformat(), args.keep,
                                             args.storage), indent=2))
    elif args.command == "stop":
        print(json.dumps(stop(), indent=2))
    elif args.command == "scores":  # the business's fetch, against whatever lake the stack was set up with
        from loanpipe.jobs import fetch_scores

        info = fetch_scores.fetch(stack_lake(), args.date, args.out)
        print(f"fetched {info['rows']} scores of {info['run_date']} from {info['source']} -> {info['out']}",
              file=sys.stderr)
    elif args.command == "status":
        print(json.dumps(status(), indent=2))
    elif args.json:
        print(json.dumps(env()))
    else:
        for k, v in env().items():
            print(f"export {k}={json.dumps(v) if not v.startswith('{') else repr(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
