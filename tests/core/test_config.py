"""The typed configuration: defaults, file, environment overrides, and errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from loanpipe.core.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config


def test_default_file_matches_the_dataclass_defaults() -> None:
    cfg = load_config(environ={})
    defaults = Config()
    assert cfg.source == str(DEFAULT_CONFIG_PATH)
    for section in ("storage", "spark", "schema", "split", "synthetic", "sampling", "model"):
        assert getattr(cfg, section) == getattr(defaults, section), section


def test_catboost_spark_trains_with_one_task_per_executor() -> None:
    from loanpipe.core.session import session_conf

    cfg = Config().replace(spark={"executor_cores": 4})
    package = cfg.spark.catboost_spark_package
    assert session_conf(cfg, [package], "app")["spark.task.cpus"] == "4"
    assert "spark.task.cpus" not in session_conf(cfg, [], "app")  # catboost-spark not loaded: no limit
    assert "spark.task.cpus" not in session_conf(Config(), [package], "app")  # local mode: cores unknown


def test_input_splits_are_sized_for_reads_of_a_few_wide_columns(spark) -> None:
    from loanpipe.core.session import session_conf

    assert session_conf(Config(), [], "app")["spark.sql.files.maxPartitionBytes"] == "1g"
    assert session_conf(Config().replace(spark={"max_partition_bytes": "256m"}), [], "app")[
        "spark.sql.files.maxPartitionBytes"] == "256m"
    assert spark.conf.get("spark.sql.files.maxPartitionBytes") == "1g"  # the sessions the jobs get


def test_catboost_spark_timeouts_come_from_the_config() -> None:
    import datetime as dt

    from loanpipe.ml.engine import spark_timeouts

    cfg = Config().replace(spark={"catboost_connect_timeout_seconds": 90, "catboost_worker_init_timeout_seconds": 1200})
    assert spark_timeouts(cfg.spark) == {"connectTimeout": dt.timedelta(seconds=90),
                                         "workerInitializationTimeout": dt.timedelta(minutes=20)}


def test_kaggle_shape_is_the_default() -> None:
    cfg = load_config(environ={})
    assert (cfg.schema.id_column, cfg.schema.target_column) == ("id", "loss")
    assert (cfg.schema.target_rule.op, cfg.schema.target_rule.threshold) == (">", 0.0)
    assert cfg.synthetic.full_rows == 105_471
    assert cfg.sampling.fraction == 0.1 and cfg.sampling.with_replacement is False


def test_environment_overrides_are_typed() -> None:
    env = {
        "LOANPIPE__STORAGE__ROOT": "s3a://bucket/loans",
        "LOANPIPE__SPARK__MASTER": "null",
        "LOANPIPE__SPARK__SHUFFLE_PARTITIONS": "4",
        "LOANPIPE__SCHEMA__CATEGORICAL_COLUMNS": "[grade, purpose]",
        "LOANPIPE__SCHEMA__TARGET_RULE__OP": ">=",
        "LOANPIPE__MODEL__AUC_FLOOR": "0.8",
        "UNRELATED": "x",
    }
    cfg = load_config(environ=env)
    assert cfg.storage.root == "s3a://bucket/loans" and cfg.storage.is_s3
    assert cfg.spark.master is None
    assert cfg.spark.shuffle_partitions == 4
    assert cfg.schema.categorical_columns == ["grade", "purpose"]
    assert cfg.schema.target_rule.op == ">="
    assert cfg.model.auc_floor == 0.8


def test_config_file_for_another_dataset(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(
        "schema:\n  id_column: loan_id\n  target_column: status\n  target_rule: {op: '==', threshold: 1}\n"
        "  categorical_columns: [grade]\n  target_is_integer: true\nstorage:\n  root: /data/lake\n"
    )
    cfg = load_config(path, environ={})
    assert cfg.schema.id_column == "loan_id" and cfg.schema.categorical_columns == ["grade"]
    assert cfg.storage.root == "/data/lake"
    assert cfg.spark == Config().spark  # untouched sections keep their defaults


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("storage:\n  rot: x\n", "unknown key(s) ['rot']"),
        ("spark:\n  shuffle_partitions: many\n", "spark.shuffle_partitions: expected an integer"),
        ("split:\n  test_fraction: 1.5\n", "split.test_fraction must be in (0, 1)"),
        ("schema:\n  target_rule: {op: '~'}\n", "target_rule.op must be one of"),
        ("model:\n  scoring_reader: pyarrow\n", "model.scoring_reader must be files or spark"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("storage: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pass --config or set LOANPIPE_CONFIG"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_bad_env_override_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="model.iterations: expected an integer"):
        load_config(environ={"LOANPIPE__MODEL__ITERATIONS": "lots"})


def test_no_secrets_in_the_config_object() -> None:
    """Secrets come from the environment at the point of use; the config has no place for them."""
    names: list[str] = []

    def walk(obj: object) -> None:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            names.append(f.name)
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)

    walk(Config())
    assert not [n for n in names if any(w in n for w in ("password", "secret", "access_key", "token"))]


def test_no_hardcoded_local_master_in_job_code() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for folder in ("loanpipe", "spark", "data_gen", "dags")
        for p in (root / folder).rglob("*.py")
        # sections.py holds the configurable default; stack.py writes the local stack's configuration
        if "local[" in p.read_text() and p.name not in ("sections.py", "stack.py")
    ]
    assert offenders == []


def _sections() -> dict[str, object]:
    cfg = Config()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "source"}


def test_every_key_is_in_the_shipped_config_with_a_comment() -> None:
    """conf/default.yaml is the documentation of the settings: every field of every section is there, with a
    comment on its line or on the line above (a section's comment does not count for its keys)."""
    import re

    lines = DEFAULT_CONFIG_PATH.read_text().splitlines()
    where: dict[tuple[str, str], int] = {}
    section = None
    for i, line in enumerate(lines):
        if m := re.match(r"^([a-z_]+):", line):
            section = m.group(1)
        elif (m := re.match(r"^  ([a-z_0-9]+):", line)) and section:
            where[(section, m.group(1))] = i
    missing, silent = [], []
    for name, section_cfg in _sections().items():
        for f in dataclasses.fields(section_cfg):  # type: ignore[arg-type]
            i = where.get((name, f.name))
            if i is None:
                missing.append(f"{name}.{f.name}")
            elif "#" not in lines[i] and not lines[i - 1].lstrip().startswith("#"):
                silent.append(f"{name}.{f.name}")
    assert missing == [], f"keys the code reads but conf/default.yaml lacks: {missing}"
    assert silent == [], f"keys without a comment in conf/default.yaml: {silent}"


def test_the_code_reads_only_keys_that_exist() -> None:
    """Every ``cfg.<section>.<key>`` (or ``config.``) in the code names a real field: a typo is found here, not on
    the cluster."""
    import re

    fields = {name: {f.name for f in dataclasses.fields(s)} | {a for a in dir(type(s)) if not a.startswith("_")}
              for name, s in _sections().items()}  # type: ignore[arg-type]  (fields, and properties such as is_s3)
    pattern = re.compile(r"\b(?:cfg|config)\.(" + "|".join(fields) + r")\.([a-z_][a-z0-9_]*)")
    root = Path(__file__).resolve().parents[2]
    unknown = []
    for folder in ("loanpipe", "dags", "bots", "spark", "data_gen", "bench", "scripts"):
        for path in (root / folder).rglob("*.py"):
            for section, key in pattern.findall(path.read_text()):
                if key not in fields[section]:
                    unknown.append(f"{path.relative_to(root)}: {section}.{key}")
    assert unknown == []
