"""Every command the README and docs/ tell a user to run answers ``--help`` (and make targets exist), so a
newcomer's first try of any of them prints how to use it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(p.read_text() for p in DOCS)
MODULES = sorted(set(re.findall(r"python -m ([a-z_][a-z0-9_.]*)", TEXT)))
SCRIPTS = sorted(set(re.findall(r"python ([a-z_]+/[a-z_]+\.py)", TEXT)))
TARGETS = sorted(set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", TEXT)))
# A description line with a long run of spaces inside it is two source lines joined by a backslash left in a
# docstring (argparse's own option table aligns with spaces, so only the text above it is looked at).
JOINED = re.compile(r"\S {8,}[^\s#]")  # aligned comments (`   # ...`) are not joins


def test_the_docs_name_commands() -> None:
    assert {"loanpipe.jobs.ingest", "loanpipe.jobs.fetch_scores", "bench"} <= set(MODULES)
    assert {"data_gen/data_gen.py", "spark/app.py"} <= set(SCRIPTS)
    assert {"run", "test"} <= set(TARGETS)


@pytest.mark.parametrize("command", [["-m", m] for m in MODULES] + [[s] for s in SCRIPTS], ids=" ".join)
def test_each_command_answers_help(command: list[str]) -> None:
    done = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.lstrip().lower().startswith("usage"), done.stdout[:500]
    description = re.split(r"^(?:options|optional arguments|positional arguments):$", done.stdout, flags=re.M)[0]
    assert not [ln for ln in description.splitlines() if JOINED.search(ln)], description


def test_each_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.M))
    assert set(TARGETS) - defined == set(), f"the docs name make targets the Makefile lacks: {set(TARGETS) - defined}"


def test_the_stacks_quick_model_is_the_unit_tests_model(base_config) -> None:  # noqa: ANN001 - a fixture
    """The end-to-end stacks (LOANPIPE_STACK_QUICK_MODEL=1) train with the unit tests' model sizes, as
    loanpipe/dev/stack.py says: the plumbing is under test there, not the model's quality."""
    import dataclasses

    from loanpipe.dev.stack import QUICK_MODEL, config_env

    quick, model = config_env("model", QUICK_MODEL), config_env("model", dataclasses.asdict(base_config.model))
    assert {k: model[k] for k in quick} == quick
    assert config_env("model", QUICK_MODEL)["LOANPIPE__MODEL__PROMOTION__COOLDOWN_DATES"] == "0"


@pytest.mark.parametrize("quick", [True, False])
def test_only_a_quick_stacks_jobs_get_the_quick_model_and_jvm(quick: bool, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The quick model sizes and the C1-only JVM (loanpipe.dev.stack.QUICK_JVM) reach the node's jobs through
    the stack's cluster environment when LOANPIPE_STACK_QUICK_MODEL=1, and a stack without it (`make run`) has
    neither."""
    import yaml

    from loanpipe.dev import local, stack

    monkeypatch.setattr(local, "STACK_DIR", tmp_path)
    monkeypatch.setenv("LOANPIPE_STACK_QUICK_MODEL", "1" if quick else "0")
    env = yaml.safe_load(stack.write_config("local").read_text())["cluster"]["env"]
    quick_keys = {"JDK_JAVA_OPTIONS", *stack.config_env("model", stack.QUICK_MODEL)}
    if quick:
        assert env["JDK_JAVA_OPTIONS"] == "-XX:TieredStopAtLevel=1" and env["LOANPIPE__MODEL__ITERATIONS"] == "60"
    else:
        assert quick_keys.isdisjoint(env)
