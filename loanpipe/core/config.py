"""One typed configuration for every job: a YAML file plus environment overrides.

Resolution order (later wins):

1. the dataclass defaults below (the Kaggle "loan-default-prediction" shape on a local folder),
2. the YAML file (``--config`` / ``LOANPIPE_CONFIG``; ``conf/default.yaml`` is the shipped one),
3. environment variables ``LOANPIPE__<SECTION>__<KEY>=value`` (values parsed as YAML scalars, so
   ``LOANPIPE__SPARK__SHUFFLE_PARTITIONS=4`` is an int and ``LOANPIPE__SCHEMA__CATEGORICAL_COLUMNS=[a, b]``
   a list).

Secrets (S3 keys, SMTP passwords) are never part of this object: they are read from the environment (or an
Airflow connection) at the point of use, so a config can be printed, logged or shipped safely.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ENV_PREFIX = "LOANPIPE__"
CONFIG_ENV = "LOANPIPE_CONFIG"
PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_DIR / "conf" / "default.yaml"

from loanpipe.core.sections import (ConfigError, StorageConfig, SparkConfig, TargetRule, SchemaConfig, SplitConfig,
                                     SyntheticConfig, SamplingConfig, BatchConfig, OutcomesConfig, QualityConfig,
                                     ModelConfig, PromotionConfig,
                                     DEFAULT_MASTER_SCALE, REASONS_FOR, RiskConfig, ClusterConfig, AirflowConfig)

__all__ = ["CONFIG_ENV", "Config", "DEFAULT_CONFIG_PATH", "ENV_PREFIX", "env_overrides", "load_config",
           "ConfigError", "StorageConfig", "SparkConfig", "TargetRule", "SchemaConfig", "SplitConfig",
           "SyntheticConfig", "SamplingConfig", "BatchConfig", "OutcomesConfig", "QualityConfig", "ModelConfig", "PromotionConfig",
           "DEFAULT_MASTER_SCALE",
           "REASONS_FOR", "RiskConfig", "ClusterConfig", "AirflowConfig"]


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    outcomes: OutcomesConfig = field(default_factory=OutcomesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    airflow: AirflowConfig = field(default_factory=AirflowConfig)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **sections: Any) -> "Config":
        """A copy with whole sections or section fields replaced: ``cfg.replace(storage={"root": p})``."""
        changes = {}
        for name, value in sections.items():
            current = getattr(self, name)
            if isinstance(value, dict):
                value = _build(type(current), _deep_merge(dataclasses.asdict(current), value), name)
            changes[name] = value
        return dataclasses.replace(self, **changes)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one value against a dataclass field type; raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def env_overrides(environ: typing.Mapping[str, str] | None = None) -> dict[str, Any]:
    """``LOANPIPE__SECTION__KEY[__SUBKEY]=value`` as a nested dict of YAML-parsed values."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. ">="): take the text as it is
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def load_config(path: str | os.PathLike[str] | None = None, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Load the configuration from ``path`` (or $LOANPIPE_CONFIG, or the shipped default) plus env overrides."""
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config or set {CONFIG_ENV}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level must be a mapping of sections")
    data = _deep_merge(data, env_overrides(environ))
    data.pop("source", None)
    try:
        cfg = _build(Config, data, "")
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    return dataclasses.replace(cfg, source=str(path))
