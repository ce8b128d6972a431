"""Writes model/model.ipynb and spark/spark_model.ipynb from the cells below (source of truth for the
notebooks' code; outputs come from executing them with papermill: `make notebooks`)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent

MODEL = [
    ("md", """# Baseline CatBoost on the loan-default data

Data of the Kaggle *loan-default-prediction* shape (synthetic here: `loanpipe.ml.synth`; the real `train_v2.csv`
gives the same steps). Steps: a small EDA, type-aware imputation, a descending feature-importance list, and then
the pipeline's own model choice: candidate feature sets (all raw columns; raw columns plus the engineered pair
differences; the importance top-k; forward selection) compared by stratified K-fold cross-validation, chosen by
the one-standard-error rule with a guard against plain CatBoost, and a calibrated PD. Every step calls the
project's package (`loanpipe.ml.features`, `loanpipe.ml.selection`, `loanpipe.ml.training`, `loanpipe.ml.calibration`,
`loanpipe.reports.plots`): the same code the pipeline runs."""),
    ("params", """# Parameters (papermill overrides these; CI runs a small sample)
rows = 100_000        # random sample of the data
seed = 2014           # data seed
folds = 5             # cross-validation folds
iterations = 500      # CatBoost iterations of every CV fit and of the serving model (learning rate: CatBoost's own)
top_k = 30            # features kept by importance
max_forward = 12      # forward-selection budget
cv_rows = 20_000      # rows the candidates are cross-validated on
thread_count = 2"""),
    ("code", """import time
import datetime as dt
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from IPython.display import Image, display
from catboost import CatBoostClassifier
from sklearn.metrics import roc_auc_score

from loanpipe.ml import synth, features as fx, metrics, training, calibration
from loanpipe.reports import plots
from loanpipe.core.config import load_config
from loanpipe.core.schema import DataSchema

t0 = time.time()
cfg = load_config().replace(model={"iterations": iterations, "cv_folds": folds, "top_k_features": top_k,
                                   "max_forward_features": max_forward, "cv_sample_rows": cv_rows,
                                   "thread_count": thread_count})
params = training.base_params(cfg)
frame, truth = synth.generate(rows, seed)
frame["default"] = (frame["loss"] > 0).astype("int32")
schema = DataSchema.from_columns(cfg.schema, list(frame.columns[:-1]), source="synthetic")
feature_cols = list(schema.features)
test = training.hash_split(frame["id"], seed, 0.3)            # held out, as ingest's test/
train, hold = frame[~test].reset_index(drop=True), frame[test].reset_index(drop=True)
y = train["default"].to_numpy()
print(f"sample: {frame.shape[0]:,} rows x {frame.shape[1]} columns; default rate {frame['default'].mean():.4f}; "
      f"train {len(train):,}, held out {len(hold):,}")"""),
    ("md", "## EDA: target, missingness, column types"),
    ("code", """loss = frame["loss"]
print("loss > 0:", f"{(loss > 0).mean():.2%}", "| loss among defaults: median", loss[loss > 0].median(), "max", loss.max())
miss = frame[feature_cols].isna().mean()
print(f"columns with missing values: {(miss > 0).sum()} of {len(feature_cols)}; max missing share {miss.max():.1%}")
fills, kinds = fx.fit_imputation(train, feature_cols, [])
print(pd.Series(kinds).value_counts().rename("columns by type").to_string())
fig, ax = plt.subplots(1, 2, figsize=(11, 3.5))
loss[loss > 0].plot.hist(bins=50, ax=ax[0], logy=True, title="loss among defaults")
miss[miss > 0].sort_values(ascending=False).reset_index(drop=True).plot(ax=ax[1], title="missing share per column (sorted)")
plt.tight_layout(); plt.show()"""),
    ("md", "## Type-aware imputation and the importance ranking"),
    ("code", """imputed = fx.impute_frame(train, fills, [])
ranking = fx.importance_ranking(imputed, y, feature_cols, [], training.base_params(cfg, iterations=100))
importance = pd.DataFrame(ranking, columns=["feature", "importance"])
display(importance.head(20))
importance.head(40).plot.bar(x="feature", y="importance", figsize=(11, 3), legend=False, title="top 40 by importance")
plt.tight_layout(); plt.show()"""),
    ("md", """## The pipeline's model choice: candidates compared by cross-validation

`training.discover` is what the pipeline's bootstrap runs: pair differences of near-collinear columns found from
the data, then every candidate scored on the same stratified folds (by a hash of the id). The simplest candidate
within one standard error of the best is chosen, unless it is more than one standard error below plain CatBoost
on all raw columns (the guard)."""),
    ("code", """spec, found = training.discover(cfg, train, schema)
display(pd.DataFrame(found["pairs_found"]))
candidates = pd.DataFrame(found["candidates"]).drop(columns=["features"]).set_index("candidate")
display(candidates)
print(found["decision"]["rule"])
if "guard" in found["decision"]:
    print("guard:", found["decision"]["guard"])
print("serving features:", spec.features)
curve = pd.DataFrame(found["forward_selection"])
ax = curve.plot(y="mean_auc", marker="o", figsize=(9, 3), legend=False, title="forward selection (mean CV AUC per feature tried)")
ax.set(xlabel="features tried (in ranking order)", ylabel="mean CV AUC"); plt.tight_layout(); plt.show()
print("discovery seconds:", found["seconds"])"""),
    ("md", "## The serving fit, the calibrated PD on held-out rows, and plain CatBoost beside it"),
    ("code", """x = spec.transform_pandas(train)
model = CatBoostClassifier(**params, verbose=0, allow_writing_files=False).fit(x[spec.features], y)
raw_score = model.predict_proba(spec.transform_pandas(hold)[spec.features])[:, 1]
pd_hold = calibration.apply(spec.calibration, raw_score)
y_hold = hold["default"].to_numpy()
plain = CatBoostClassifier(**params, verbose=0, allow_writing_files=False).fit(train[feature_cols], y)
p_plain = plain.predict_proba(hold[feature_cols])[:, 1]
display(Image(plots.roc_png(y_hold, {"champion (calibrated PD)": pd_hold, "plain CatBoost, raw columns": p_plain,
                                      "oracle (true probabilities)": truth["p_default"][test].to_numpy()},
                             "ROC on held-out rows")))
cal = found["calibration"]
print(f"calibration: {cal['method']} ({cal['reason']})")
before, after = calibration.summary(y_hold, raw_score), calibration.summary(y_hold, pd_hold)
display(pd.DataFrame({"before": [before["brier"], before["log_loss"], before["worst_bin"]["jeffreys_p"]],
                      "after": [after["brier"], after["log_loss"], after["worst_bin"]["jeffreys_p"]]},
                     index=["Brier", "log-loss", "worst decile's Jeffreys p"]))
display(pd.DataFrame(after["table"]).set_index("bin"))
display(Image(plots.reliability_png(after["table"], "Calibration on held-out rows")))"""),
    ("code", """oracle = roc_auc_score(y_hold, truth["p_default"][test])
table = pd.DataFrame({"held-out AUC": [roc_auc_score(y_hold, pd_hold), roc_auc_score(y_hold, p_plain), oracle]},
                     index=[f"champion ({found['decision']['chosen']}, {len(spec.features)} features)",
                            "plain CatBoost on the raw columns", "oracle (true probabilities)"])
table["vs oracle"] = table["held-out AUC"] / oracle
print(f"rows {rows:,}, folds {folds}, iterations {iterations}, total {time.time() - t0:.0f} s")
table"""),
]

SPARK = [
    ("md", """# The same model on PySpark

The steps of `model/model.ipynb` with Spark DataFrames: the data is read into Spark, imputation statistics are
computed with Spark aggregations, the pipeline's candidate comparison chooses the features, the serving model is
fitted by the pipeline's engine (catboost-spark when its JVM package is on the classpath, else CatBoost on a
driver sample), and held-out rows are scored through the pipeline's Spark path (`predict_frame`: the features as
Spark column expressions, CatBoost in `mapInArrow`, the calibrated PD). The ROC and reliability curves are the
pipeline's own plots."""),
    ("params", """rows = 100_000
seed = 2014
folds = 5
iterations = 500
max_forward = 12
cv_rows = 20_000
thread_count = 2
master = "local[2]\""""),
    ("code", """import time
import datetime as dt
import numpy as np
import pandas as pd
from IPython.display import Image, display
from pyspark.sql import functions as F
from sklearn.metrics import roc_auc_score

from loanpipe.ml import synth, features as fx, training, calibration
from loanpipe.reports import plots
from loanpipe.core.config import load_config
from loanpipe.ml.engine import choose_engine
from loanpipe.core.schema import DataSchema
from loanpipe.ml.scoring import predict_frame
from loanpipe.core.session import get_spark

t0 = time.time()
cfg = load_config().replace(spark={"master": master}, model={"iterations": iterations, "cv_folds": folds,
                                                              "max_forward_features": max_forward, "cv_sample_rows": cv_rows,
                                                              "thread_count": thread_count, "train_sample_rows": rows})
spark = get_spark(cfg, app_name="spark_model notebook")
frame, truth = synth.generate(rows, seed)
frame["default"] = (frame["loss"] > 0).astype("int32")
schema = DataSchema.from_columns(cfg.schema, list(frame.columns[:-1]), source="synthetic")
df = spark.createDataFrame(frame).repartition(4).cache()
held = F.abs(F.xxhash64(F.col("id").cast("string"), F.lit(seed))) % 10 < 3   # 30% held out, by a hash of the id
train_df, test_df = df.filter(~held), df.filter(held)
engine = choose_engine(spark, cfg.model.engine)
print(f"{df.count():,} rows in Spark ({train_df.count():,} train), {len(df.columns)} columns; training engine: {engine}")"""),
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
    ("md", "## The candidate comparison (what the bootstrap runs) on a sample drawn by Spark\n\n"
           "The sample reaches the driver as its ids; the comparison then fetches at every column only the rows "
           "its CV and its searches look at, and the calibration's columns for the whole sample "
           "(`training.DriverSample`): the whole sample at full width would be 1.2 GB at 200,000 rows."),
    ("code", """sample = training.DriverSample.of_spark(train_df, "id", cfg.model.train_sample_rows, cfg.model.seed)
spec, found = training.discover(cfg, sample, schema)
display(pd.DataFrame(found["candidates"]).drop(columns=["features"]).set_index("candidate"))
print(found["decision"]["rule"])
print("serving features:", spec.features, "| calibration:", found["calibration"]["method"])
print("discovery seconds:", found["seconds"])"""),
    ("md", "## The serving fit on Spark and scoring held-out rows with the pipeline's Spark path"),
    ("code", """bundle = training.build_bundle(cfg, spark, train_df, spec, schema, engine, dt.date(2026, 1, 1), "notebook", {})
scored = predict_frame(test_df, bundle, schema).join(test_df.select("id", "default"), "id").toPandas()
truth_held = truth.set_index("id").loc[scored["id"], "p_default"].to_numpy()
y_held, pd_held = scored["default"].to_numpy(), scored["p_default"].to_numpy()
display(Image(plots.roc_png(y_held, {"champion (Spark scoring)": pd_held, "oracle": truth_held}, "ROC on held-out rows (Spark)")))
cal = calibration.summary(y_held, pd_held)
display(Image(plots.reliability_png(cal["table"], "Calibration on held-out rows (Spark)")))
print(f"Brier {cal['brier']:.5f}, worst decile's Jeffreys p {cal['worst_bin']['jeffreys_p']:.4f}")"""),
    ("md", "## Spark vs pandas on the same rows"),
    ("code", """from catboost import CatBoostClassifier

train_pd = frame[frame["id"].isin(set(frame["id"]) - set(scored["id"]))]
m = CatBoostClassifier(**training.base_params(cfg), verbose=0, allow_writing_files=False)
m.fit(spec.transform_pandas(train_pd)[spec.features], train_pd["default"])
held_pd = frame.set_index("id").loc[scored["id"]].reset_index()
p_pandas = calibration.apply(spec.calibration, m.predict_proba(spec.transform_pandas(held_pd)[spec.features])[:, 1])
table = pd.DataFrame({"held-out AUC": [roc_auc_score(y_held, pd_held), roc_auc_score(y_held, p_pandas),
                                       roc_auc_score(y_held, truth_held)]},
                     index=[f"Spark (pipeline path, engine {engine})", "pandas + CatBoost", "oracle"])
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
    import argparse

    argparse.ArgumentParser(description="Write model/model.ipynb and spark/spark_model.ipynb afresh from the cells "
                                        "above, without outputs (make notebooks runs them and keeps the outputs).").parse_args()
    nbformat.write(build(MODEL), ROOT / "model" / "model.ipynb")
    nbformat.write(build(SPARK), ROOT / "spark" / "spark_model.ipynb")
    print("wrote model/model.ipynb and spark/spark_model.ipynb")
