"""PSI (loanpipe.ml.psi): reference bins, shares, one treatment of missing values and ±inf in numpy and Spark."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from loanpipe.ml import psi


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
