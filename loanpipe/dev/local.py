"""Where the local stack lives (folders, ports, the node's user) and how its processes are run: each service
in its own process group with a pid file and a log under ``var/stack``, stopped with its whole group."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

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
# Where releases are shipped on the node, and the node's S3 keys. A stack on other ports (the tests' stacks, which
# run side by side) has its own of each, so that one never unpacks a release over the one another is running.
NODE_REMOTE_DIR = NODE_HOME / ("loanpipe" if SSH_PORT == 2222 else f"loanpipe-{SSH_PORT}")
NODE_S3_ENV = NODE_HOME / ".config" / "loanpipe" / ("s3.env" if S3_PORT == 9000 else f"s3-{S3_PORT}.env")


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


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not open 127.0.0.1:{port} within {seconds:.0f} s; see {paths()['logs']}")


def start_process(name: str, cmd: list[str], extra_env: dict[str, str] | None = None) -> None:
    p = paths()
    p["pids"].mkdir(parents=True, exist_ok=True)
    p["logs"].mkdir(parents=True, exist_ok=True)
    if alive(name):
        return
    log = open(p["logs"] / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(extra_env or {})}, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    (p["pids"] / f"{name}.pid").write_text(str(proc.pid))


def pid_of(name: str) -> int | None:
    f = paths()["pids"] / f"{name}.pid"
    try:
        return int(f.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(name: str) -> bool:
    pid = pid_of(name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def stop_process(name: str, sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
    stop_processes([name], sig, wait)


def stop_processes(names: list[str], sig: int = signal.SIGTERM, wait: float = 20.0) -> None:
    """Signal every named service's process group at once, wait up to ``wait`` seconds for all of them together,
    then SIGKILL what is left (so N services take as long as the slowest one, not the sum of them)."""
    groups = {name: pid for name in names if (pid := pid_of(name)) is not None}
    for s in (sig, signal.SIGKILL):
        for pid in groups.values():
            try:
                os.killpg(pid, s)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_group_alive(pid) for pid in groups.values()):
            time.sleep(0.2)
        if not any(_group_alive(pid) for pid in groups.values()):
            break
    for name in groups:
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
