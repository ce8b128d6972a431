"""The model registry: versioned models in the lake, and the promotion ledger that says which one serves when.

Layout::

    artifacts/models/<version>/model.cbm        the CatBoost model (native format, from either engine)
    artifacts/models/<version>/spec.json        the FeatureSpec: imputation, pairs, features, PSI reference
    artifacts/models/<version>/metadata.json    training data fingerprint, parameters, metrics, code version
    artifacts/models/ledger.json                the promotion ledger: one record per run date that decided something

A version is its run date and role (``20261129-bootstrap``, ``20261129-challenger``): a rerun of a date finds its
own models and reuses them, so it scores and decides exactly as the first run did. A model's folder is
published whole. The ledger is one small object replaced atomically; it is the only champion pointer:

* the champion that scores run date D is the one serving after the latest record dated before D, or, when
  there is none, the bootstrap's model;
* the champion serving now is the one after the latest record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from loanpipe.core import catalog
from loanpipe.core.dates import version_for
from loanpipe.core.storage import Lake
from loanpipe.core.transaction import held
from loanpipe.ml import model_card
from loanpipe.ml.bundle import ModelBundle
from loanpipe.ml.features import FeatureSpec


class ModelError(RuntimeError):
    """A model is missing or unreadable."""


MODEL_CARD = "model_card.md"


def find_model(lake: Lake, version: str) -> ModelBundle | None:
    """The published model ``version``, or None when it was never published."""
    return load_model(lake, version) if lake.is_published(catalog.model(lake, version)) else None


def save_model(lake: Lake, bundle: ModelBundle) -> str:
    """Write the model folder (the model, its spec, metadata and model card) through staging and publish it;
    return its URI."""
    return catalog.publish_folder(lake, catalog.model(lake, bundle.version), {
        "model.cbm": bundle.native, "spec.json": bundle.spec.to_dict(),
        "metadata.json": {**bundle.metadata, "version": bundle.version},
        MODEL_CARD: model_card.render(bundle).encode()})


def load_model(lake: Lake, version: str) -> ModelBundle:
    if not lake.is_published(catalog.model(lake, version)):
        raise ModelError(f"model {version} is not in {catalog.model(lake)} (or was never published)")
    return ModelBundle(
        version=version,
        spec=FeatureSpec.from_dict(lake.read_json(catalog.model(lake, version, "spec.json"))),
        native=lake.read_bytes(catalog.model(lake, version, "model.cbm")),
        metadata=lake.read_json(catalog.model(lake, version, "metadata.json")),
    )


def ledger(lake: Lake) -> dict[str, dict[str, Any]]:
    """The promotion ledger: run date -> record (``champion``, ``serving``, ``bootstrap``, ``promoted``, ...)."""
    uri = catalog.ledger(lake)
    return lake.read_json(uri) if lake.exists(uri) else {}


LEDGER_LEASE = dt.timedelta(minutes=2)  # a record takes milliseconds; a holder gone longer than this is dead


def record_decision(lake: Lake, run_date: dt.date, record: dict[str, Any] | None) -> None:
    """Write run date D's record, replacing an earlier one of D (never appending); None: D decided nothing, so
    it has no record. ``record`` holds at least ``champion`` (the model that scored D) and ``serving`` (the one
    serving after D)."""
    if record is not None and not {"champion", "serving"} <= set(record):
        raise ValueError("a ledger record needs the champion that scored the date and the model serving after it")
    # runs of different dates may record at the same time: the read-modify-write holds the ledger's lock
    with held(lake, "ledger", f"record {run_date}", LEDGER_LEASE, wait=LEDGER_LEASE.total_seconds()):
        entries = ledger(lake)
        if record is None:
            if entries.pop(run_date.isoformat(), None) is not None:
                lake.write_json(catalog.ledger(lake), entries)
            return
        entries[run_date.isoformat()] = {"run_date": run_date.isoformat(), **record}
        lake.write_json(catalog.ledger(lake), dict(sorted(entries.items())))


def champion_for(lake: Lake, run_date: dt.date, entries: dict[str, dict[str, Any]] | None = None) -> str | None:
    """The champion that scores ``run_date``: the one serving after the latest record before it, else the
    bootstrap's model (None: nothing was ever bootstrapped). ``entries``: the ledger, when already read."""
    entries = ledger(lake) if entries is None else entries
    before = [d for d in entries if d < run_date.isoformat()]
    if before:
        return entries[max(before)]["serving"]
    boot = [entries[d] for d in sorted(entries) if entries[d].get("bootstrap")]
    return boot[0]["champion"] if boot else None


def last_discovery(lake: Lake, run_date: dt.date, days: int) -> dt.date | None:
    """The latest of the ``days - 1`` dates before ``run_date`` whose challenger chose its features again (its
    ``discovered_on`` is its own date), or None."""
    for back in range(1, days):
        day = run_date - dt.timedelta(days=back)
        version = version_for(day, "challenger")
        if lake.is_published(catalog.model(lake, version)):
            if lake.read_json(catalog.model(lake, version, "metadata.json")).get("discovered_on") == day.isoformat():
                return day
    return None


def champion_version(lake: Lake) -> str | None:
    """The champion serving now: the one after the latest record."""
    entries = ledger(lake)
    return entries[max(entries)]["serving"] if entries else None
