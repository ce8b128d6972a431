"""Preprocessing: type-aware imputation, pair discovery, and pandas/Spark agreement of a FeatureSpec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loanpipe.ml import features as fx
from loanpipe.ml import synth


def test_imputation_by_column_type() -> None:
    frame = pd.DataFrame({
        "cont": [0.5, np.nan, 1.5, 10.0],
        "disc": [1.0, 1.0, 2.0, np.nan],
        "big": [float(i) * 1000 for i in range(3)] + [np.nan],
        "cat": ["a", None, "b", "a"],
    })
    frame = pd.concat([frame] * 20, ignore_index=True)
    frame.loc[:59, "big"] = np.arange(60) * 7.0  # > 50 integer levels -> "integer"
    fills, kinds = fx.fit_imputation(frame, ["cont", "disc", "big", "cat"], ["cat"])
    assert kinds == {"cont": "continuous", "disc": "discrete", "big": "integer", "cat": "categorical"}
    assert fills["cont"] == pytest.approx(1.5) and fills["disc"] == 1.0 and fills["cat"] == fx.MISSING_LEVEL
    imputed = fx.impute_frame(frame, fills, ["cat"])
    assert imputed.isna().sum().sum() == 0


def test_pair_search_finds_the_golden_pairs() -> None:
    frame, _ = synth.generate(12_000, 3)
    structure = synth.make_structure(3)
    cols = list(synth.FEATURE_NAMES)
    fills, _ = fx.fit_imputation(frame, cols, [])
    imputed = fx.impute_frame(frame, fills, [])
    y = (frame["loss"] > 0).to_numpy(dtype=int)
    pairs = fx.find_pairs(imputed, cols, y, max_pairs=5)
    found = {frozenset((p["a"], p["b"])) for p in pairs}
    for a, b in structure.golden_pair_names:
        assert frozenset((a, b)) in found, (a, b, pairs)
    assert pairs[0]["auc"] > 0.8 and all(abs(p["corr"]) >= 0.95 for p in pairs)


@pytest.mark.spark
def test_spark_and_pandas_transforms_agree(spark) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "a": [1.0, np.nan, 3.0, 4.0], "b": [0.5, 1.0, None, 2.0],
                          "g": ["x", None, "y", "x"]})
    spec = fx.FeatureSpec(
        raw_features=["a", "b", "g"],
        pairs=[{"name": "a_minus_b", "a": "a", "b": "b", "beta": 0.5}],
        features=["a_minus_b", "a", "g"], categorical=["g"],
        imputation={"a": 2.0, "b": 1.0, "g": fx.MISSING_LEVEL}, column_kinds={},
    )
    expected = spec.transform_pandas(frame)
    got = spark.createDataFrame(frame).select("id", *spec.spark_columns()).toPandas().sort_values("id")
    pd.testing.assert_frame_equal(got[spec.features].reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
    assert expected["a_minus_b"].tolist() == [0.75, 1.5, 2.5, 3.0]
    assert expected["g"].tolist() == ["x", fx.MISSING_LEVEL, "y", "x"]
