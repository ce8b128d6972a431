"""The versioned code bundle shipped to the Spark master node: exactly this release's code.

    python -m loanpipe.orchestration.bundle [--out dist]

makes ``dist/loanpipe-<version>/`` with ``loanpipe.zip`` (the packages that run on the Spark node: core, ml, jobs, reports; for ``spark-submit --py-files``), the two
entry scripts (``data_gen.py``, ``land.py``, ``app.py``), ``conf/`` and ``VERSION``; and prints the folder. The version is
``git describe`` of the checkout (with ``-dirty`` for uncommitted changes), so a run records what it ran.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

from loanpipe.core.config import PROJECT_DIR
from loanpipe.core.version import code_version

# What runs on the Spark node; orchestration (Airflow) and dev (the local harness) stay behind.
SHIPPED_PACKAGES = ("core", "ml", "jobs", "reports")
ENTRY_SCRIPTS = {"data_gen.py": PROJECT_DIR / "data_gen" / "data_gen.py", "land.py": PROJECT_DIR / "data_gen" / "land.py",
                 "app.py": PROJECT_DIR / "spark" / "app.py"}


def build(out_dir: Path | str = PROJECT_DIR / "dist", version: str | None = None) -> Path:
    version = version or code_version()
    target = Path(out_dir) / f"loanpipe-{version}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    package = PROJECT_DIR / "loanpipe"
    with zipfile.ZipFile(target / "loanpipe.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(package / "__init__.py", "loanpipe/__init__.py")
        for sub in SHIPPED_PACKAGES:
            for path in sorted([*(package / sub).rglob("*.py"), *(package / sub).rglob("*.j2")]):
                zf.write(path, path.relative_to(PROJECT_DIR))
    for name, src in ENTRY_SCRIPTS.items():
        shutil.copy2(src, target / name)
    shutil.copytree(PROJECT_DIR / "conf", target / "conf")
    (target / "VERSION").write_text(version + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(PROJECT_DIR / "dist"), help="where to put the bundle folder")
    parser.add_argument("--version", help="version label (default: git describe)")
    args = parser.parse_args(argv)
    print(build(args.out, args.version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
