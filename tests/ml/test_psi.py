"""PSI (loanpipe.ml.psi): reference bins, shares, one treatment of missing values and ±inf in numpy and Spark."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from loanpipe.core.schema import DataSchema
from loanpipe.ml import psi
from loanpipe.ml.bundle import ModelBundle


def test_psi() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=20_000)
    edges = psi.quantile_edges(ref)
    base = psi.bin_shares(ref, edges)
    assert len(base) == len(edges) + 2 and sum(base) == pytest.approx(1.0)
    same = psi.psi(base, psi.bin_shares(rng.normal(size=20_000), edges))
    shifted = psi.psi(base, psi.bin_shares(rng.normal(loc=1.0, size=20_000), edges))
    assert same < 0.01 and psi.psi_label(same) == "stable"
    assert shifted > 0.25 and psi.psi_label(shifted) == "drift"
    with_missing = np.where(rng.random(20_000) < 0.3, np.nan, rng.normal(size=20_000))
    assert psi.psi(base, psi.bin_shares(with_missing, edges)) > 0.25  # missingness shift counts


def test_category_psi_bins_frequent_levels_other_and_unseen() -> None:
    train = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5, dtype=object)
    ref = psi.category_reference(train, top=2)
    assert ref["levels"] == ["a", "b"] and ref["seen"] == ["a", "b", "c", "d"]
    assert ref["shares"] == [0.5, 0.3, 0.2, 0.0]  # a, b, other seen (c, d), unseen
    same = psi.category_shares(train[::-1], ref)
    assert psi.psi(ref["shares"], same) == 0.0
    new = np.array(["a"] * 50 + ["b"] * 30 + ["zz"] * 20, dtype=object)  # a level never seen in training
    shares = psi.category_shares(new, ref)
    assert shares == [0.5, 0.3, 0.0, 0.2]
    assert psi.psi(ref["shares"], shares) > 0.25
    many = psi.category_reference(np.array([f"L{i}" for i in range(psi.MAX_SEEN_LEVELS + 1)], dtype=object))
    assert many["seen"] is None and len(many["levels"]) == psi.TOP_LEVELS
    assert psi.category_shares(np.array(["new"], dtype=object), many)[-2:] == [1.0, 0.0]  # counted as other


def test_missing_values_and_infinities_are_binned_the_same_way_everywhere() -> None:
    """NaN is missing; -inf and +inf are values in the lowest and the highest bin."""
    assert psi.bin_shares(np.array([np.nan, -np.inf, 0.5, np.inf]), [0.0, 1.0]) == [0.25, 0.25, 0.25, 0.25]
    ref = psi.category_reference(np.array(["a", None, "a", np.nan, "a", "a"], dtype=object), top=1)
    assert ref["levels"] == ["a"] and ref["seen"] == ["__missing__", "a"]
    assert ref["shares"] == pytest.approx([4 / 6, 2 / 6, 0.0])  # a; other seen (the missing level); unseen


@pytest.mark.spark
def test_spark_shares_equal_numpy_shares(spark) -> None:
    values = [None, float("nan"), float("-inf"), -1.0, 0.0, 0.5, 1.0, 2.0, float("inf"), 3.0]
    cats = ["a", None, "b", "a", "zz", "a", "b", None, "c", "a"]
    num_ref = {"edges": [0.0, 1.0], "shares": []}
    cat_ref = psi.category_reference(np.array(["a", "a", "b", None, "c"], dtype=object), top=2)
    # several partitions of several Arrow batches each: each partition adds up its batches, the driver the partitions
    df = spark.createDataFrame(list(zip(values, cats)), "x double, c string").repartition(3)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, "2")
    try:
        got = psi.spark_shares(df, {"x": num_ref, "c": cat_ref})
    finally:
        spark.conf.set(key, before)
    assert got["x"] == pytest.approx(psi.bin_shares(np.array(values, dtype=float), num_ref["edges"]))
    assert got["c"] == pytest.approx(psi.category_shares(np.array(cats, dtype=object), cat_ref))
    assert sum(got["x"]) == pytest.approx(1.0) and sum(got["c"]) == pytest.approx(1.0)  # no row falls between bins


finite = st.floats(-1e6, 1e6, allow_nan=False)
samples = arrays(np.float64, st.integers(1, 300), elements=st.one_of(finite, st.just(np.nan), st.just(np.inf)))


@settings(max_examples=200, deadline=None)
@given(samples, samples)
def test_psi_is_never_negative(a: np.ndarray, b: np.ndarray) -> None:
    edges = psi.quantile_edges(a)
    assert psi.psi(psi.bin_shares(a, edges), psi.bin_shares(b, edges)) >= 0.0


@settings(max_examples=200, deadline=None)
@given(samples, st.randoms(use_true_random=False))
def test_psi_of_a_sample_against_itself_is_zero(a: np.ndarray, rnd) -> None:  # noqa: ANN001
    edges = psi.quantile_edges(a)
    shuffled = a.copy()
    rnd.shuffle(shuffled)
    shares = psi.bin_shares(a, edges)
    assert sum(shares) == pytest.approx(1.0)
    assert psi.psi(shares, psi.bin_shares(shuffled, edges)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.spark
def test_drift_bins_features_and_score_against_the_reference(spark, tiny_frame, tiny_schema: DataSchema, tiny_bundle: ModelBundle) -> None:  # noqa: ANN001
    batch = tiny_frame([(1, -2.0, None, 0, 0), (2, -0.5, 0.5, 0, 0), (3, 0.5, 2.0, 0, 1), (4, None, -3.0, 0, 0)])
    scored = spark.createDataFrame([(1, 0.05), (2, 0.2), (3, 0.6), (4, None)], "id long, p_default double")
    out = psi.drift(scored, batch, tiny_bundle.spec, tiny_schema)
    # the model's inputs are binned, after imputation: f1's missing value is filled with 0.0, f2's stays missing
    # bins: missing, <-1, [-1,0), [0,1), >=1
    for name, shares in (("f1", [0.0, 0.25, 0.25, 0.5, 0.0]), ("f2", [0.25, 0.25, 0.0, 0.25, 0.25])):
        expected = psi.psi(tiny_bundle.spec.reference["features"][name]["shares"], shares)
        assert out["features"][name]["psi"] == pytest.approx(round(expected, 5)), name
    expected_score = psi.psi([0.0, 0.5, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25])
    assert out["score"]["psi"] == pytest.approx(round(expected_score, 5))
    assert out["max_feature_psi"]["feature"] in ("f1", "f2")
    assert {e["status"] for e in out["features"].values()} <= {"stable", "moderate shift", "drift"}


def test_psi_matches_a_hand_computation_with_the_floor() -> None:
    """sum((a - e) * ln(a / e)) with shares floored at 1e-4 (the empty bin), in R:
    e <- pmax(c(.1, .2, .3, .4, 0), 1e-4); a <- pmax(c(.15, .25, .25, .30, .05), 1e-4); sum((a - e) * log(a / e))"""
    assert psi.psi([0.1, 0.2, 0.3, 0.4, 0.0], [0.15, 0.25, 0.25, 0.30, 0.05]) == pytest.approx(0.379423662167262,
                                                                                                abs=1e-12)
    assert psi.psi([0.5, 0.5], [0.5, 0.5]) == 0.0


@pytest.mark.parametrize(("value", "light", "label"), [
    (0.0, "green", "stable"), (0.0999, "green", "stable"), (0.1, "amber", "moderate shift"),
    (0.2499, "amber", "moderate shift"), (0.25, "red", "drift"), (3.0, "red", "drift")])
def test_psi_lights_at_their_boundaries(value: float, light: str, label: str) -> None:
    """Green under 0.1, amber from 0.1 to under 0.25, red from 0.25 (the industry's usual cut-offs)."""
    assert psi.psi_light(value) == light and psi.psi_label(value) == label
