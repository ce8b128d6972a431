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
import uuid
from dataclasses import dataclass
from typing import Any

from loanpipe.core import catalog
from loanpipe.ml.features import FeatureSpec
from loanpipe.core.storage import Lake


class ModelError(RuntimeError):
    """A model or the champion pointer is missing or unreadable."""


@dataclass
class ModelBundle:
    version: str
    spec: FeatureSpec
    native: bytes
    metadata: dict[str, Any]

    def predictor(self) -> Any:
        from loanpipe.ml.engine import load_native

        return load_native(self.native)


def new_version(run_date: dt.date, role: str) -> str:
    return f"{run_date:%Y%m%d}-{role}-{dt.datetime.now(dt.UTC):%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_model(lake: Lake, bundle: ModelBundle) -> str:
    """Write the model folder through staging and publish it; return its URI."""
    return catalog.publish_folder(lake, catalog.model(lake, bundle.version), {
        "model.cbm": bundle.native, "spec.json": bundle.spec.to_dict(),
        "metadata.json": {**bundle.metadata, "version": bundle.version}})


def load_model(lake: Lake, version: str) -> ModelBundle:
    if not lake.is_published(catalog.model(lake, version)):
        raise ModelError(f"model {version} is not in {catalog.model(lake)} (or was never published)")
    return ModelBundle(
        version=version,
        spec=FeatureSpec.from_dict(lake.read_json(catalog.model(lake, version, "spec.json"))),
        native=lake.read_bytes(catalog.model(lake, version, "model.cbm")),
        metadata=lake.read_json(catalog.model(lake, version, "metadata.json")),
    )


def champion_version(lake: Lake) -> str | None:
    uri = catalog.champion_pointer(lake)
    return lake.read_json(uri)["version"] if lake.exists(uri) else None


def set_champion(lake: Lake, version: str, reason: str, run_date: dt.date, previous: str | None) -> None:
    history_uri = catalog.champion_history(lake)
    history = lake.read_json(history_uri) if lake.exists(history_uri) else []
    entry = {"version": version, "previous": previous, "reason": reason, "run_date": run_date.isoformat(),
             "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    lake.write_json(history_uri, [*history, entry])
    lake.write_json(catalog.champion_pointer(lake), entry)
