"""A versioned model = fitted preprocessing (FeatureSpec) + a native CatBoost model + metadata, in the lake.

Layout::

    artifacts/models/<version>/model.cbm        the CatBoost model (native format, from either engine)
    artifacts/models/<version>/spec.json        the FeatureSpec: imputation, pairs, features, PSI reference
    artifacts/models/<version>/metadata.json    training data fingerprint, parameters, metrics, code version, time
    artifacts/champion.json                      the pointer: which version serves, since when, why

A model's folder is written to staging and published whole; the champion pointer is a small object replaced
atomically, so a scoring run sees the old champion or the new one.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loanpipe import storage
from loanpipe.features import FeatureSpec
from loanpipe.storage import Lake

MODELS = "models"
CHAMPION = "champion.json"


class ModelError(RuntimeError):
    """A model or the champion pointer is missing or unreadable."""


@dataclass
class ModelBundle:
    version: str
    spec: FeatureSpec
    native: bytes
    metadata: dict[str, Any]

    def predictor(self) -> Any:
        from loanpipe.engine import load_native

        return load_native(self.native)


def new_version(run_date: dt.date, role: str) -> str:
    return f"{run_date:%Y%m%d}-{role}-{dt.datetime.now(dt.UTC):%H%M%S}-{uuid.uuid4().hex[:6]}"


def code_version() -> str:
    """The release being run: $LOANPIPE_CODE_VERSION (set by the shipped bundle), else git, else 'unknown'."""
    if os.environ.get("LOANPIPE_CODE_VERSION"):
        return os.environ["LOANPIPE_CODE_VERSION"]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def model_uri(lake: Lake, version: str, name: str = "") -> str:
    return lake.uri(storage.ARTIFACTS, MODELS, version, name)


def save_model(lake: Lake, bundle: ModelBundle) -> str:
    """Write the model folder through staging and publish it; return its URI."""
    stage = lake.staging_uri(f"model-{bundle.version}")
    lake.write_bytes(f"{stage}/model.cbm", bundle.native)
    lake.write_json(f"{stage}/spec.json", bundle.spec.to_dict())
    lake.write_json(f"{stage}/metadata.json", {**bundle.metadata, "version": bundle.version})
    target = model_uri(lake, bundle.version)
    lake.publish(stage, target)
    return target


def load_model(lake: Lake, version: str) -> ModelBundle:
    base = model_uri(lake, version)
    if not lake.is_published(base):
        raise ModelError(f"model {version} is not in {lake.uri(storage.ARTIFACTS, MODELS)} (or was never published)")
    return ModelBundle(
        version=version,
        spec=FeatureSpec.from_dict(lake.read_json(model_uri(lake, version, "spec.json"))),
        native=lake.read_bytes(model_uri(lake, version, "model.cbm")),
        metadata=lake.read_json(model_uri(lake, version, "metadata.json")),
    )


def champion_uri(lake: Lake) -> str:
    return lake.uri(storage.ARTIFACTS, CHAMPION)


def champion_version(lake: Lake) -> str | None:
    uri = champion_uri(lake)
    return lake.read_json(uri)["version"] if lake.exists(uri) else None


def set_champion(lake: Lake, version: str, reason: str, run_date: dt.date, previous: str | None) -> None:
    history_uri = lake.uri(storage.ARTIFACTS, MODELS, "champion_history.json")
    history = lake.read_json(history_uri) if lake.exists(history_uri) else []
    entry = {"version": version, "previous": previous, "reason": reason, "run_date": run_date.isoformat(),
             "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    lake.write_json(history_uri, [*history, entry])
    lake.write_json(champion_uri(lake), entry)
