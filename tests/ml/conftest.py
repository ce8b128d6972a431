"""What the model tests share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loanpipe.ml.bundle import ModelBundle


@pytest.fixture(scope="session")
def proc_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, scores a, scores b): 20 rows whose AUCs, DeLong variances and paired test R's pROC computed (the
    reference values are in tests/ml/test_metrics.py)."""
    y = np.array([0] * 12 + [1] * 8)
    a = np.array([0.05, 0.10, 0.10, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.60, 0.70,
                  0.30, 0.40, 0.55, 0.60, 0.65, 0.80, 0.85, 0.90])
    b = np.array([0.10, 0.05, 0.20, 0.15, 0.30, 0.20, 0.45, 0.35, 0.40, 0.55, 0.50, 0.60,
                  0.50, 0.45, 0.60, 0.75, 0.70, 0.85, 0.80, 0.95])
    return y, a, b


@pytest.fixture(scope="session")
def _small_model_trained() -> tuple[ModelBundle, pd.DataFrame]:
    return _small_model()


@pytest.fixture()
def small_model(_small_model_trained: tuple[ModelBundle, pd.DataFrame]) -> tuple[ModelBundle, pd.DataFrame]:
    """(a CatBoost model where f1 drives default up strongly, f2 weakly, f3 not at all; its 3,000 training rows),
    trained once for the session; each test gets its own copy to change."""
    import copy

    bundle, frame = _small_model_trained
    return copy.deepcopy(bundle), frame.copy()


def _small_model(seed: int = 3) -> tuple:
    """A CatBoost model where f1 drives default up strongly, f2 weakly, f3 not at all."""
    from catboost import CatBoostClassifier

    from loanpipe.ml.features import FeatureSpec

    rng = np.random.default_rng(seed)
    n = 3000
    frame = pd.DataFrame({"f1": rng.normal(size=n), "f2": rng.normal(size=n), "f3": rng.normal(size=n)})
    logit = -2.5 + 2.0 * frame["f1"] + 0.5 * frame["f2"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = CatBoostClassifier(iterations=80, depth=3, random_seed=seed, verbose=0, allow_writing_files=False)
    model.fit(frame, y)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        model.save_model(str(Path(tmp) / "m.cbm"))
        native = (Path(tmp) / "m.cbm").read_bytes()
    cols = ["f1", "f2", "f3"]
    spec = FeatureSpec(raw_features=cols, pairs=[], features=cols, categorical=[],
                       imputation={c: None for c in cols}, column_kinds={c: "continuous" for c in cols})
    return ModelBundle("20300101-bootstrap", spec, native, {}), frame
