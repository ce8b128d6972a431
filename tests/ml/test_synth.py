"""The synthetic Kaggle-shaped generator: shape, target, determinism, chunking, and the documented properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from loanpipe.ml import synth

ROWS = 20_000
SEED = 2014


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synth.generate(ROWS, SEED)


def test_shape_and_names(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, truth = data
    assert frame.shape == (ROWS, 771)  # id + 769 features + loss, as train_v2.csv
    assert frame.columns[0] == "id" and frame.columns[-1] == "loss"
    features = list(frame.columns[1:-1])
    assert len(features) == 769
    assert features[0] == "f1" and features[-1] == "f778"
    assert not set(f"f{g}" for g in synth.GAPS) & set(features)
    assert frame["id"].is_unique and frame["id"].tolist() == list(range(1, ROWS + 1))
    assert list(truth.columns) == ["id", synth.TRUTH_COLUMN]
    assert synth.TRUTH_COLUMN not in frame.columns  # the truth is beside the data, never in it


def test_target_shape_and_default_rate(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, _ = data
    loss = frame["loss"]
    assert loss.dtype == np.int64
    assert loss.min() == 0 and loss.max() <= 100
    rate = (loss > 0).mean()
    assert abs(rate - 0.0928) < 0.006, rate  # about 9.28% as the real file
    defaults = loss[loss > 0]
    assert defaults.min() >= 1 and defaults.median() <= 10  # skewed: most losses are small


def test_deterministic_for_a_seed_and_chunk_size_independent() -> None:
    a, ta = synth.generate(12_345, 7)
    b, tb = synth.generate(12_345, 7)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    chunks = list(synth.generate_chunks(12_345, 7, chunk_rows=3_000))
    assert [len(c) for c, _ in chunks] == [3000, 3000, 3000, 3000, 345]
    pd.testing.assert_frame_equal(pd.concat([c for c, _ in chunks], ignore_index=True), a)
    # any row count is a prefix of a larger one
    small, _ = synth.generate(500, 7)
    pd.testing.assert_frame_equal(small, a.iloc[:500])
    other, _ = synth.generate(500, 8)
    assert not other.equals(small)


def test_column_kinds_missingness_and_tails(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, _ = data
    features = frame.drop(columns=["id", "loss"])
    structure = synth.make_structure(SEED)
    kinds = structure.describe().set_index("feature")["kind"]
    discrete = features[kinds[kinds == "discrete"].index]
    assert (discrete.stack() % 1 == 0).all()  # integer-valued
    assert discrete.nunique().max() <= 40
    high = features[kinds[kinds == "high_cardinality_integer"].index]
    assert (high.stack() % 1 == 0).all() and high.nunique().median() > 1000 and high.max().max() > 1e6
    miss = features.isna().mean()
    assert 0.35 < (miss > 0).mean() < 0.65  # about half of the columns have missing cells
    assert miss.max() > 0.08  # some near 15-20% (thin-file rows concentrate them)
    heavy = features[kinds[kinds == "heavy_tailed"].index]
    assert (heavy.kurt() > 5).mean() > 0.8  # heavy tails


def test_near_collinear_groups_exist(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, _ = data
    structure = synth.make_structure(SEED)
    a, b = structure.golden_pair_names[0]
    assert frame[a].corr(frame[b]) > 0.99
    cont = structure.describe().query("kind == 'continuous' and group >= 0")
    group = cont.groupby("group")["feature"].apply(list)
    pair = next(cols for cols in group if len(cols) >= 2)
    assert abs(frame[pair[0]].corr(frame[pair[1]])) > 0.8


def test_weak_raw_signal_strong_golden_differences(data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, truth = data
    y = (frame["loss"] > 0).to_numpy()
    structure = synth.make_structure(SEED)
    oracle = roc_auc_score(y, truth[synth.TRUTH_COLUMN])
    assert oracle > 0.985
    diffs = synth.golden_difference_frame(frame, structure).fillna(0)
    best_diff = max(max(roc_auc_score(y, diffs[c]), 1 - roc_auc_score(y, diffs[c])) for c in diffs)
    raw = frame.drop(columns=["id", "loss"]).fillna(0)
    single = [max(roc_auc_score(y, raw[c]), 1 - roc_auc_score(y, raw[c])) for c in raw.columns[:200]]
    assert best_diff > 0.85  # one pair difference alone is a strong model
    assert max(single) < 0.7  # no raw column is


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rows must be positive"):
        list(synth.generate_chunks(0, 1))
    with pytest.raises(ValueError, match="chunk_rows must be positive"):
        list(synth.generate_chunks(10, 1, chunk_rows=0))
