"""Discovery (``loanpipe.ml.training.discover``): which rows reach the driver, and at what width."""

from __future__ import annotations

from loanpipe.ml import training
from loanpipe.core.config import Config


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


def test_a_wide_fit_looks_at_split_features_columns_per_split_and_a_narrow_one_at_all(base_config: Config,
                                                                                      monkeypatch) -> None:
    """model.split_features: each fit wider than it gets CatBoost's random subspace (rsm = split_features /
    columns), every narrower fit (and the notebooks' width-less parameters) sees every column; 0 turns it off."""
    import pytest

    from loanpipe.core.schema import DataSchema
    from loanpipe.ml import engine, selection, synth

    cfg = base_config.replace(model={"split_features": 40, "iterations": 20, "search_iterations": 10,
                                     "cv_sample_rows": 800, "top_k_features": 10, "max_forward_features": 3})
    assert training.base_params(cfg, width=160)["rsm"] == 0.25
    assert "rsm" not in training.base_params(cfg, width=40) and "rsm" not in training.base_params(cfg)
    assert "rsm" not in training.base_params(cfg.replace(model={"split_features": 0}), width=160)

    frame, _ = synth.generate(1_600, 5)
    frame = frame[["id", *[c for c in frame.columns if c.startswith("f")][:120], "loss"]]
    schema = DataSchema.from_columns(cfg.schema, list(frame.columns), "test")
    frame[schema.label_column] = (frame["loss"] > 0).astype("int32")
    seen: dict[str, tuple[int, float | None]] = {}
    cross_validate = selection.cross_validate

    def spy(frame, y, folds, features, categorical, params, name=""):  # noqa: ANN001, ANN202
        seen[name] = (len(features), params.get("rsm"))
        return cross_validate(frame, y, folds, features, categorical, params, name)

    monkeypatch.setattr(selection, "cross_validate", spy)
    spec, report = training.discover(cfg, frame, schema)
    assert seen[selection.ALL_RAW] == (120, round(40 / 120, 4))
    assert seen[selection.TOP_K] == (10, None)
    assert report["cv"]["split_features"] == 40

    fitted = engine.load_native(engine.train_python(frame, list(schema.features), frame[schema.label_column].to_numpy(),
                                                    training.base_params(cfg, width=len(schema.features))))
    assert fitted.get_all_params()["rsm"] == pytest.approx(40 / 120, abs=1e-4)  # CatBoost keeps it as a float32
