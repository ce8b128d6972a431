"""Plots for the run's artifacts: ROC curve, score histogram, reliability curve and trend as PNG bytes (matplotlib)."""

from __future__ import annotations

import io

import numpy as np


def _figure():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_png(y: np.ndarray, curves: dict[str, np.ndarray], title: str) -> bytes:
    """ROC curves of one or more score vectors on the same labels."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(plt, fig)


def score_hist_png(y: np.ndarray | None, p: np.ndarray, cutoff: float, title: str) -> bytes:
    """The PDs' histogram with the cut-off: by outcome when ``y`` is given, else all of them (a day's scores)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    bins = np.linspace(0, 1, 41)
    if y is None:
        ax.hist(p, bins=bins, alpha=0.7, label="applications", color="tab:gray")
    else:
        ax.hist(p[y == 0], bins=bins, alpha=0.6, label="no default", color="tab:blue")
        ax.hist(p[y == 1], bins=bins, alpha=0.6, label="default", color="tab:red")
    ax.axvline(cutoff, color="black", linestyle="--", linewidth=1, label=f"cut-off {cutoff:g}")
    ax.set(xlabel="Predicted default probability", ylabel="Applications", title=title, yscale="log")
    ax.legend()
    return _save(plt, fig)


def reliability_png(table: list[dict], title: str) -> bytes:
    """Reliability curve: observed default rate against mean PD per score decile (``calibration_table`` rows),
    with each decile's Jeffreys 95% interval."""
    from scipy import stats

    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    pd_ = np.array([r["mean_pd"] for r in table])
    obs = np.array([r["observed_rate"] for r in table])
    n = np.array([r["n"] for r in table])
    d = np.array([r["defaults"] for r in table])
    lo = stats.beta.ppf(0.025, d + 0.5, n - d + 0.5)
    hi = stats.beta.ppf(0.975, d + 0.5, n - d + 0.5)
    top = float(max(pd_.max(initial=0), hi.max(initial=0), 0.05)) * 1.05
    ax.plot([0, top], [0, top], linestyle="--", color="grey", linewidth=0.8, label="perfect calibration")
    ax.errorbar(pd_, obs, yerr=[np.clip(obs - lo, 0, None), np.clip(hi - obs, 0, None)], fmt="o-", capsize=3,
                label="observed (Jeffreys 95% interval)")
    ax.set(xlabel="Mean predicted PD (decile)", ylabel="Observed default rate", title=title, xlim=(0, top),
           ylim=(0, top))
    ax.legend(loc="upper left")
    return _save(plt, fig)


def trend_png(points: list[dict], title: str) -> bytes:
    """AUC, observed default rate and score PSI over run dates (``loanpipe.ml.evaluation.history`` points), one small panel each;
    the PSI panel marks the 0.1 and 0.25 thresholds."""
    plt = _figure()
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 5.5), dpi=100, sharex=True)
    x = np.arange(len(points))
    labels = [p["run_date"][5:] for p in points]
    for ax, key, name in zip(axes, ("roc_auc", "default_rate", "score_psi"), ("AUC", "default rate", "score PSI")):
        values = np.array([np.nan if p.get(key) is None else p[key] for p in points], dtype=float)
        ax.plot(x, values, marker="o", markersize=3)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    for level, colour in ((0.1, "orange"), (0.25, "red")):
        axes[2].axhline(level, color=colour, linestyle="--", linewidth=0.8)
    step = max(1, len(points) // 10)
    axes[2].set_xticks(x[::step], labels[::step], rotation=45, fontsize=7)
    axes[0].set_title(title)
    return _save(plt, fig)


def evaluation_plots(evaluation: dict, y: np.ndarray, p: np.ndarray, champion: str, cutoff: float,
                     run_date: object) -> dict[str, tuple[str, bytes]]:
    """The backtest's plots, {artifact key: (file name, PNG)}: reliability (when it has rows), ROC (when its AUC
    is defined) and the served PDs' histogram by outcome."""
    plots = {}
    if len(y):
        plots["reliability"] = ("reliability.png", reliability_png(
            evaluation["calibration"]["table"], f"Calibration, batch {run_date}"))
    if evaluation["roc_auc"] is not None:
        plots["roc_curve"] = ("roc.png", roc_png(y, {f"champion {champion}": p}, f"ROC, batch {run_date}"))
    plots["backtest_histogram"] = ("backtest_hist.png", score_hist_png(y, p, cutoff, f"Scores by outcome, {run_date}"))
    return plots


def _save(plt, fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
