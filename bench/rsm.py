"""What ``model.split_features`` buys on wide data: CatBoost at the pipeline's settings (500 iterations, depth 6,
automatic learning rate) on the synthetic Kaggle-shape data (769 columns), with every column looked at for each
split and with CatBoost's random subspace (rsm = split_features / columns): fit seconds and held-out AUC, on the
raw columns and on the raw columns plus the golden pair differences (where the signal is).
"""

from __future__ import annotations

import time
from typing import Any

from bench import common

SPLIT_FEATURES = (None, 80, 40)  # None: every column (rsm unset)


def run(info: dict[str, Any], rows: int = 100_000, seed: int = 2014) -> dict[str, Any]:
    from catboost import CatBoostClassifier
    from sklearn.metrics import roc_auc_score

    from bench.synthetic import frames
    from loanpipe.ml import engine

    raw, with_pairs, y, held, oracle = frames(rows, seed)
    out: dict[str, Any] = {"rows": rows, "seed": seed, "held_out": int(held.sum()), "oracle_auc": oracle, "fits": []}
    for name, x in (("raw columns", raw), ("raw columns + golden pair differences", with_pairs)):
        for split in SPLIT_FEATURES:
            rsm = engine.subspace_share(split or 0, x.shape[1])
            params = engine.catboost_params(500, 6, None, 0, 2, rsm)
            start = time.monotonic()
            model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False)
            model.fit(x[~held], y[~held])
            auc = float(roc_auc_score(y[held], model.predict_proba(x[held])[:, 1]))
            out["fits"].append({"features": name, "columns": x.shape[1], "split_features": split, "rsm": rsm,
                                "auc": auc, "seconds": round(time.monotonic() - start, 1)})
    base = {f["features"]: f for f in out["fits"] if f["split_features"] is None}
    for f in out["fits"]:
        f["speedup"] = round(base[f["features"]]["seconds"] / f["seconds"], 2)
        f["auc_change"] = round(f["auc"] - base[f["features"]]["auc"], 4)
    print(common.header(f"Random subspace on {rows:,} synthetic rows ({int((~held).sum()):,} fitted, "
                        f"{int(held.sum()):,} held out): 500 iterations, depth 6", info))
    print(common.table(["features", "columns", "split_features", "rsm", "held-out AUC", "AUC change", "seconds",
                        "speed-up"],
                       [[f["features"], f["columns"], f["split_features"] or "all", f["rsm"] or 1, f"{f['auc']:.4f}",
                         f"{f['auc_change']:+.4f}", f["seconds"], f"{f['speedup']}x"] for f in out["fits"]]
                       + [["oracle: the true probabilities", "", "", "", f"{oracle:.4f}", "", "", ""]]))
    common.save("rsm", {"machine": info, **out})
    return out
