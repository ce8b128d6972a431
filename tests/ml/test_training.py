"""When a challenger chooses its features again (training.rediscover_reason): cadence and drift."""

from __future__ import annotations

import datetime as dt

from loanpipe.ml import training
from loanpipe.core.config import Config
from loanpipe.ml.features import FeatureSpec
from loanpipe.ml.bundle import ModelBundle


def champion(discovered_on: str | None) -> ModelBundle:
    spec = FeatureSpec([], [], [], [], {}, {})
    meta = {"run_date": "2026-11-01", **({"discovered_on": discovered_on} if discovered_on else {})}
    return ModelBundle("m", spec, b"", meta)


def drift(psi: float) -> dict:
    return {"max_feature_psi": {"feature": "f7", "psi": psi}}


def test_cadence_and_drift_trigger_a_new_candidate_comparison(base_config: Config) -> None:
    cfg = base_config.replace(model={"rediscover_every_days": 7, "rediscover_psi": 0.25})
    day = dt.date(2026, 11, 5)
    assert training.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.1)) is None
    assert "7 days ago" in training.rediscover_reason(cfg, champion("2026-11-01"), dt.date(2026, 11, 8), drift(0.1))
    reason = training.rediscover_reason(cfg, champion("2026-11-01"), day, drift(0.31))
    assert reason is not None and "f7 drifted: PSI 0.31 > model.rediscover_psi = 0.25" in reason
    # a PSI measured on a few rows is mostly sampling noise (about 9/rows for 10 bins): reported, not acted on
    small = base_config.replace(model={"rediscover_every_days": 7, "rediscover_psi": 0.25,
                                       "rediscover_psi_min_rows": 500})
    assert training.rediscover_reason(small, champion("2026-11-01"), day, {**drift(0.58), "rows": 30}) is None
    assert "PSI 0.58" in training.rediscover_reason(small, champion("2026-11-01"), day, {**drift(0.58), "rows": 500})
    assert "7 days ago" in training.rediscover_reason(small, champion("2026-11-01"), dt.date(2026, 11, 8),
                                                     {**drift(0.58), "rows": 30})  # the cadence still holds
    # models made before discovered_on existed count from their run date
    assert training.rediscover_reason(cfg, champion(None), dt.date(2026, 11, 8), {}) is not None


def test_discovery_holds_only_its_cv_and_search_rows_at_full_width_and_chooses_as_on_the_whole_sample(
        base_config: Config, spark, tmp_path, monkeypatch) -> None:
    """The bootstrap's sample reaches the driver as ids; only the rows the CV and the searches look at come at
    every column, the calibration's at its few. The choice is the one made on the whole sample at full width."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loanpipe.core.schema import DataSchema
    from loanpipe.ml import synth

    frame, _ = synth.generate(3_000, 11)
    frame = frame[["id", *[f"f{i}" for i in range(1, 80) if f"f{i}" in frame], "loss"]]
    schema = DataSchema.from_columns(base_config.schema, list(frame.columns), "test")
    frame[schema.label_column] = (frame["loss"] > 0).astype("int32")
    for part, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):  # a scan of three files
        pq.write_table(pa.Table.from_pandas(frame.iloc[rows], preserve_index=False), tmp_path / f"part-{part}.parquet")
    train_df = spark.read.parquet(str(tmp_path))
    cfg = base_config.replace(model={"train_sample_rows": 2_400, "cv_sample_rows": 600, "calibration_folds": 3})

    fetched: list[tuple[int, int]] = []
    fetch = training.fetch_by_id

    def spy(df, id_column, ids, columns):
        fetched.append((len(ids), len(columns)))
        return fetch(df, id_column, ids, columns)

    monkeypatch.setattr(training, "fetch_by_id", spy)
    sample = training.DriverSample.of_spark(train_df, schema.id_column, cfg.model.train_sample_rows, cfg.model.seed)
    spec, report = training.discover(cfg, sample, schema)

    in_cv, search, large = training.discovery_rows(cfg, sample.ids)
    assert len(sample) == 2_400 and large and not in_cv.all()
    wide = len(schema.features) + 2
    assert fetched == [(int((in_cv | search).sum()), wide), (2_400, 2 + len(spec.raw_features))]
    assert (in_cv | search).sum() < 1_300  # about half the sample: the rest never left the executors wide

    whole = training.collect_sample(train_df, [schema.id_column, *schema.features, schema.label_column],
                                    cfg.model.train_sample_rows, cfg.model.seed)
    assert whole[schema.id_column].tolist() == sample.ids.tolist()
    spec_whole, report_whole = training.discover(cfg, whole, schema)
    assert spec.to_dict() == spec_whole.to_dict()
    assert untimed(report) == untimed(report_whole)


def untimed(value):
    """``value`` without its timings (every "seconds" key)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value
