"""The screenshot script runs end to end (stack in S3 mode, both DAGs through the scheduler, headless Chromium)
and produces every image it promises, at the browser's viewport size, not blank."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
PORTS = {"LOANPIPE_SSH_PORT": "2233", "LOANPIPE_SMTP_PORT": "1033", "LOANPIPE_AIRFLOW_PORT": "28093",
         "LOANPIPE_S3_PORT": "19037", "LOANPIPE_STACK_QUICK_MODEL": "1"}


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed "
                    "(scripts/bootstrap.sh installs it)")
def test_take_screens_produces_every_image(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from take_screens import HEIGHT, SHOTS, WIDTH

    stack_dir = ROOT / "var" / f"screens-stack-{os.getpid()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LOANPIPE", "PYSPARK"))}
    env.update(PORTS, LOANPIPE_STACK_DIR=str(stack_dir))
    out = tmp_path / "screens"
    try:
        run = subprocess.run([sys.executable, "scripts/take_screens.py", "--date", "2026-11-20", "--rows", "4000",
                              "--out", str(out)], env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        secret = json.loads((stack_dir / "s3" / "credentials.json").read_text())["secret_key"]
    finally:
        subprocess.run([sys.executable, "-m", "loanpipe.dev.stack", "stop"], env=env, capture_output=True, timeout=300,
                       cwd=ROOT)
        shutil.rmtree(stack_dir, ignore_errors=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_date"] == "2026-11-20" and manifest["storage"].startswith("bucket loanpipe")
    assert manifest["runs_per_dag"] == {"dag_new_data": 1, "dag_app": 1}  # the manual run, and no scheduled one
    assert sorted(p.name for p in out.glob("*.png")) == sorted(SHOTS)
    for name in SHOTS:
        path = out / name
        width, height = png_size(path)
        if name in ("08_roc_curve.png", "09_score_histogram.png"):  # the run's own plots, copied from the bucket
            assert width >= 400 and height >= 300, name
        else:
            assert (width, height) == (WIDTH, HEIGHT), (name, width, height)
        assert path.stat().st_size > 15_000, f"{name} looks blank ({path.stat().st_size} bytes)"
    # the script's own output and manifest never carry the S3 secret it logged in with
    assert secret not in run.stdout + run.stderr + (out / "manifest.json").read_text()
