"""What every stage of one date's run shares, as one small object instead of six arguments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from loanpipe.core.config import Config
from loanpipe.core.schema import DataSchema
from loanpipe.core.storage import Lake


@dataclass(frozen=True)
class RunContext:
    """One run date's job: its config, the lake as the date's transaction sees it, the Spark session, the lake's
    data schema, the date, and the training engine (``loanpipe.ml.engine``; None until the job has chosen it,
    which it does once the batch has passed its checks)."""

    cfg: Config
    lake: Lake
    spark: Any
    schema: DataSchema
    run_date: dt.date
    engine: str | None = None

    def read(self, uri: str) -> Any:
        """A published Parquet dataset of the lake as a Spark frame."""
        return self.spark.read.parquet(uri)
