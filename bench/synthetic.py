"""How hard the synthetic data is: plain CatBoost on the raw columns vs the same with the golden pair
differences vs the oracle (the true probabilities), at the Kaggle scale (100,000 rows, 30% held out).

The real file's published raw-feature baselines reach about 0.69-0.72 AUC; the pair differences lift the best
teams close to the oracle. The generator is tuned so that the same holds here (``loanpipe.ml.synth``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from bench import common


def frames(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray, float]:
    """The synthetic data at ``rows``: its raw columns, the same with the golden pair differences, the labels, the
    held-out rows (30%, seeded) and the oracle's AUC on them."""
    from sklearn.metrics import roc_auc_score

    from loanpipe.ml import synth

    frame, truth = synth.generate(rows, seed)
    y = (frame["loss"] > 0).astype(int).to_numpy()
    held = np.random.default_rng(0).random(rows) < 0.3
    raw = frame[list(synth.FEATURE_NAMES)]
    with_pairs = pd.concat([raw, synth.golden_difference_frame(frame, synth.make_structure(seed))], axis=1)
    return raw, with_pairs, y, held, float(roc_auc_score(y[held], truth[synth.TRUTH_COLUMN][held]))


def run(info: dict[str, Any], rows: int = 100_000, seed: int = 2014) -> dict[str, Any]:
    from catboost import CatBoostClassifier
    from sklearn.metrics import roc_auc_score

    raw, with_pairs, y, held, oracle = frames(rows, seed)
    out: dict[str, Any] = {"rows": rows, "seed": seed, "held_out": int(held.sum()), "default_rate": float(y.mean()),
                           "oracle_auc": oracle, "models": []}
    for name, x in (("CatBoost, raw columns", raw), ("CatBoost, raw columns + golden pair differences", with_pairs)):
        start = time.monotonic()
        model = CatBoostClassifier(iterations=500, thread_count=2, verbose=0, allow_writing_files=False, random_seed=0)
        model.fit(x[~held], y[~held])
        auc = float(roc_auc_score(y[held], model.predict_proba(x[held])[:, 1]))
        out["models"].append({"model": name, "auc": auc, "vs_oracle": auc / oracle, "seconds": round(time.monotonic() - start, 1)})
    print(common.header(f"Synthetic data at {rows:,} rows: how much signal the raw columns give away", info))
    print(common.table(["model (500 iterations, automatic learning rate)", "held-out AUC", "vs oracle", "seconds"],
                       [[m["model"], f"{m['auc']:.4f}", f"{m['vs_oracle']:.4f}", m["seconds"]] for m in out["models"]]
                       + [["oracle: the true probabilities", f"{oracle:.4f}", "1", ""]]))
    common.save("synthetic", {"machine": info, **out})
    return out
