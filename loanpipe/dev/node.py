"""The stand-in for the cluster's master node: its user and Python environment, and a real OpenSSH server on
loopback with key authentication and a pinned host key."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from loanpipe.core.config import PROJECT_DIR
from loanpipe.dev.local import (NODE_HOME, NODE_PYTHON, NODE_REMOTE_DIR, NODE_USER, NODE_VENV, SSH_PORT, paths, run,
                                start_process, wait_port)


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (another process of this machine waits for it)."""
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def setup_node() -> None:
    """The node's user, its Python environment and its release folder (idempotent)."""
    try:
        pwd.getpwnam(NODE_USER)
    except KeyError:
        run(["useradd", "-m", "-s", "/bin/bash", NODE_USER])
    run(["usermod", "-p", "*", NODE_USER])  # key-only login (UsePAM no treats '!' as locked)
    reqs = PROJECT_DIR / "requirements-jobs.txt"
    stamp = NODE_VENV / ".loanpipe-requirements"
    digest = hashlib.sha256(reqs.read_bytes() + (PROJECT_DIR / "requirements.lock").read_bytes()).hexdigest()
    NODE_VENV.parent.mkdir(parents=True, exist_ok=True)
    # two stacks starting together (the tests run two) must not both pip-install into the one environment
    with exclusive(NODE_VENV.parent / ".setup.lock"):
        if not stamp.exists() or stamp.read_text() != digest:
            if not (NODE_VENV / "bin" / "python").exists():
                run([NODE_PYTHON, "-m", "venv", str(NODE_VENV)])
            pip = [str(NODE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
            run([*pip, "--upgrade", "pip"])
            run([*pip, "-r", str(reqs), "-c", str(PROJECT_DIR / "requirements.lock")])
            stamp.write_text(digest)
    remote = NODE_REMOTE_DIR
    remote.mkdir(parents=True, exist_ok=True)
    shutil.chown(remote, NODE_USER, NODE_USER)


def node_spark_home() -> str:
    return str(NODE_VENV / "lib" / "python3.11" / "site-packages" / "pyspark")


def give_lake_to_node() -> None:
    """The jobs run as the node's user: it owns the lake (and must be able to reach it)."""
    lake = paths()["lake"]
    lake.mkdir(parents=True, exist_ok=True)
    run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(lake)])
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
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"loanpipe-{key}", "-f", str(d / key)])
    # The node user's own ~/.ssh/authorized_keys (sshd reads it as that user); other stacks' keys stay, and a
    # stack set up beside another (the tests run two) waits for the other's edit instead of losing it.
    ssh_dir = NODE_HOME / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    pub = (d / "client_ed25519.pub").read_text().strip()
    with exclusive(ssh_dir / ".authorized_keys.lock"):
        keys = auth.read_text().splitlines() if auth.exists() else []
        if pub not in keys:
            auth.write_text("\n".join([*keys, pub]) + "\n")
        auth.chmod(0o600)
    run(["chown", "-R", f"{NODE_USER}:{NODE_USER}", str(ssh_dir)])
    (d / "sshd_config").write_text(
        f"Port {SSH_PORT}\nListenAddress 127.0.0.1\nHostKey {d / 'host_ed25519'}\nPidFile {paths()['pids'] / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nUsePAM no\n"
        f"AuthorizedKeysFile .ssh/authorized_keys\nAllowUsers {NODE_USER}\n"
        "Subsystem sftp internal-sftp\nLogLevel INFO\nClientAliveInterval 15\nClientAliveCountMax 4\n"
    )
    host_key = " ".join((d / "host_ed25519.pub").read_text().split()[:2])
    return {"key_file": str(d / "client_ed25519"), "host_key": host_key}


def start_sshd() -> None:
    Path("/run/sshd").mkdir(exist_ok=True)
    setup_ssh()
    start_process("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(paths()["ssh"] / "sshd_config")])
    wait_port(SSH_PORT, "sshd")
