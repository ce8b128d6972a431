"""Writes model/model.ipynb and spark/spark_model.ipynb from the cells below (source of truth for the
notebooks' code; outputs come from executing them with papermill: `make notebooks`)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent

MODEL = [
    ("md", """# Baseline CatBoost on the loan-default data

Data of the Kaggle *loan-default-prediction* shape (synthetic here: `loanpipe.synth`; the real `train_v2.csv`
gives the same steps). Steps: a small EDA, type-aware imputation, a descending feature-importance list,
selection of the most informative features, cross-validation of the baseline and of the selection, forward
feature selection on the selected subset, and engineered pair differences. No hyperparameter tuning: CatBoost
does well with its defaults. Every step calls the project's package (`loanpipe.features`, `loanpipe.metrics`),
the same code the pipeline runs."""),
    ("params", """# Parameters (papermill overrides these; CI runs a small sample)
rows = 100_000        # random sample of the data
seed = 2014           # data seed
folds = 5             # cross-validation folds
iterations = 300      # CatBoost iterations (defaults otherwise)
top_k = 30            # features kept by importance
max_forward = 12      # forward-selection budget
thread_count = 2"""),
    ("code", """import time
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score
from catboost import CatBoostClassifier

from loanpipe import synth, features as fx, metrics
from loanpipe.engine import catboost_params

t0 = time.time()
params = catboost_params(iterations, 6, 0.08, 7, thread_count)
frame, truth = synth.generate(rows, seed)
y = (frame["loss"] > 0).astype(int).to_numpy()
feature_cols = list(synth.FEATURE_NAMES)
print(f"sample: {frame.shape[0]:,} rows x {frame.shape[1]} columns; default rate {y.mean():.4f}")"""),
    ("md", "## EDA: target, missingness, column types"),
    ("code", """loss = frame["loss"]
print("loss > 0:", f"{(loss > 0).mean():.2%}", "| loss among defaults: median", loss[loss > 0].median(), "max", loss.max())
miss = frame[feature_cols].isna().mean()
print(f"columns with missing values: {(miss > 0).sum()} of {len(feature_cols)}; max missing share {miss.max():.1%}")
fills, kinds = fx.fit_imputation(frame, feature_cols, [])
print(pd.Series(kinds).value_counts().rename("columns by type").to_string())
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
loss[loss > 0].plot.hist(bins=50, ax=ax[0], logy=True, title="loss among defaults")
miss[miss > 0].sort_values(ascending=False).reset_index(drop=True).plot(ax=ax[1], title="missing share per column (sorted)")
plt.tight_layout(); plt.show()"""),
    ("md", "## Type-aware imputation, importance ranking, selection"),
    ("code", """imputed = fx.impute_frame(frame, fills, [])
ranking = fx.importance_ranking(imputed, y, feature_cols, [], catboost_params(100, 6, 0.08, 7, thread_count))
importance = pd.DataFrame(ranking, columns=["feature", "importance"])
display(importance.head(20))
selected = importance["feature"].head(top_k).tolist()
importance.head(40).plot.bar(x="feature", y="importance", figsize=(11, 3), legend=False, title="top 40 by importance")
plt.tight_layout(); plt.show()"""),
    ("md", "## Cross-validated AUC: all raw features vs the selected ones"),
    ("code", """def cv_auc(x: pd.DataFrame, cols: list[str]) -> tuple[float, float]:
    aucs = []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        m = CatBoostClassifier(**params, verbose=0, allow_writing_files=False).fit(x.iloc[tr][cols], y[tr])
        aucs.append(roc_auc_score(y[te], m.predict_proba(x.iloc[te][cols])[:, 1]))
    return float(np.mean(aucs)), float(np.std(aucs))

results = {}
results["baseline: all raw features"] = cv_auc(imputed, feature_cols)
results[f"selected: top {top_k} by importance"] = cv_auc(imputed, selected)
pd.DataFrame(results, index=["mean AUC", "std"]).T"""),
    ("md", """## Forward selection on the selected subset, and engineered pair differences

Near-collinear pairs (|corr| ≥ 0.95) whose residual difference separates defaults are found from the data
(`loanpipe.features.find_pairs`), not named by hand."""),
    ("code", """valid = np.random.default_rng(seed).random(len(y)) < 0.25
pairs = fx.find_pairs(imputed[~valid], feature_cols, y[~valid], max_pairs=10)
display(pd.DataFrame(pairs))
candidates = fx.add_pairs(imputed, pairs)
ranked = [p["name"] for p in pairs] + selected
forward, curve = fx.forward_selection(candidates[~valid], y[~valid], candidates[valid], y[valid], selected,
                                      [], catboost_params(100, 6, 0.08, 7, thread_count), max_forward)
forward_pairs, curve_pairs = fx.forward_selection(candidates[~valid], y[~valid], candidates[valid], y[valid], ranked,
                                                  [], catboost_params(100, 6, 0.08, 7, thread_count), max_forward)
fig, ax = plt.subplots(figsize=(9, 3.5))
for name, c in (("raw selected", curve), ("pairs + raw selected", curve_pairs)):
    ax.plot(range(1, len(c) + 1), [p["auc"] for p in c], marker="o", label=name)
ax.set(xlabel="features tried (in ranking order)", ylabel="validation AUC", title="forward selection"); ax.legend()
plt.tight_layout(); plt.show()
print("forward selection (raw):", forward)
print("forward selection (pairs + raw):", forward_pairs)"""),
    ("code", """results[f"forward selection (raw), {len(forward)} features"] = cv_auc(candidates, forward)
results[f"forward selection (pairs + raw), {len(forward_pairs)} features"] = cv_auc(candidates, forward_pairs)
oracle = roc_auc_score(y, truth["p_default"])
table = pd.DataFrame(results, index=["mean AUC", "std"]).T
table.loc["oracle (true probabilities)"] = [oracle, 0.0]
print(f"rows {rows:,}, folds {folds}, iterations {iterations}, total {time.time() - t0:.0f} s")
table"""),
]

SPARK = [
    ("md", """# The same model on PySpark

The steps of `model/model.ipynb` with Spark DataFrames: the data is read into Spark, imputation statistics are
computed with Spark aggregations, the selected features and pair differences are applied as Spark column
expressions (`FeatureSpec.spark_columns`, the pipeline's own scoring path) and models are trained with the
pipeline's engine (catboost-spark when its JVM package is on the classpath, else CatBoost on a driver sample).
The last table compares the Spark-side results with the pandas ones."""),
    ("params", """rows = 100_000
seed = 2014
folds = 3
iterations = 300
max_forward = 12
thread_count = 2
master = "local[2]\""""),
    ("code", """import time
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from loanpipe import synth, features as fx, training
from loanpipe.config import load_config
from loanpipe.engine import choose_engine, catboost_params, load_native
from loanpipe.schema import DataSchema
from loanpipe.scoring import predict_frame
from loanpipe.session import get_spark

t0 = time.time()
cfg = load_config().replace(spark={"master": master}, model={"iterations": iterations, "max_forward_features": max_forward,
                                                              "thread_count": thread_count, "train_sample_rows": rows})
spark = get_spark(cfg, app_name="spark_model notebook")
frame, truth = synth.generate(rows, seed)
frame["default"] = (frame["loss"] > 0).astype("int32")
schema = DataSchema.from_columns(cfg.schema, list(frame.columns[:-1]), source="synthetic")
df = spark.createDataFrame(frame).repartition(4).cache()
engine = choose_engine(spark, cfg.model.engine)
print(f"{df.count():,} rows in Spark, {len(df.columns)} columns; training engine: {engine}")"""),
    ("md", "## EDA and imputation statistics in Spark"),
    ("code", """stats = df.agg(F.avg("default").alias("default_rate"), F.count("*").alias("rows")).first()
print(f"default rate {stats['default_rate']:.4f} over {stats['rows']:,} rows")
cols = list(synth.FEATURE_NAMES)[:60]
medians = df.agg(*[F.percentile_approx(c, 0.5, 10000).alias(c) for c in cols]).first().asDict()
fills, kinds = fx.fit_imputation(frame, cols, [])
cmp = pd.DataFrame({"kind": kinds, "spark median (approx)": medians, "pandas median": frame[cols].median(),
                    "pipeline fill": {c: fills[c] for c in cols}})
iqr = (frame[cols].quantile(0.75) - frame[cols].quantile(0.25)).replace(0, 1)
cmp["|diff| / IQR"] = (cmp["spark median (approx)"] - cmp["pandas median"]).abs() / iqr
print("largest |Spark median - pandas median| / IQR over 60 columns:", round(float(cmp["|diff| / IQR"].max()), 4))
cmp.head(10)"""),
    ("md", "## Discovery (imputation, pairs, importance, forward selection) and the serving fit through the pipeline"),
    ("code", """spec, report = training.discover(cfg, frame, schema)
print("selected features:", spec.features)
display(pd.DataFrame(report["forward_selection"]).head(15))
print("discovery seconds:", report["seconds"])"""),
    ("md", "## Cross-validation on Spark folds (hash of the id), scoring with the pipeline's Spark path"),
    ("code", """fold = (F.abs(F.xxhash64(F.col("id").cast("string"), F.lit(seed))) % folds)
aucs = []
for k in range(folds):
    train_df, test_df = df.filter(fold != k), df.filter(fold == k)
    bundle = training.build_bundle(cfg, spark, train_df, fx.FeatureSpec(**spec.to_dict()), schema, engine,
                                   __import__("datetime").date(2026, 1, 1), "cv", {})
    scored = predict_frame(test_df, bundle, schema).join(test_df.select("id", "default"), "id").toPandas()
    aucs.append(roc_auc_score(scored["default"], scored["p_default"]))
spark_cv = (float(np.mean(aucs)), float(np.std(aucs)))
print("Spark CV AUC per fold:", [round(a, 4) for a in aucs])"""),
    ("md", "## Spark vs pandas on the same rows"),
    ("code", """from sklearn.model_selection import StratifiedKFold
from catboost import CatBoostClassifier

x = spec.transform_pandas(frame)
y = frame["default"].to_numpy()
pandas_aucs = []
for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
    m = CatBoostClassifier(**catboost_params(iterations, 6, 0.08, 7, thread_count), verbose=0,
                           allow_writing_files=False).fit(x.iloc[tr][spec.features], y[tr])
    pandas_aucs.append(roc_auc_score(y[te], m.predict_proba(x.iloc[te][spec.features])[:, 1]))
table = pd.DataFrame({"Spark (pipeline path)": spark_cv, "pandas + CatBoost": (np.mean(pandas_aucs), np.std(pandas_aucs))},
                     index=["mean AUC", "std"]).T
table["oracle AUC"] = roc_auc_score(y, truth["p_default"])
print(f"rows {rows:,}, folds {folds}, engine {engine}, total {time.time() - t0:.0f} s")
assert abs(table.iloc[0, 0] - table.iloc[1, 0]) < 0.02, "Spark and pandas disagree beyond noise"
table"""),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "loanpipe", "display_name": "Python (loanpipe)", "language": "python"}
    for kind, src in cells:
        if kind == "md":
            nb.cells.append(new_markdown_cell(src))
        else:
            cell = new_code_cell(src)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    return nb


if __name__ == "__main__":
    nbformat.write(build(MODEL), ROOT / "model" / "model.ipynb")
    nbformat.write(build(SPARK), ROOT / "spark" / "spark_model.ipynb")
    print("wrote model/model.ipynb and spark/spark_model.ipynb")
