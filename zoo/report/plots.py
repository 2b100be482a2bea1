"""The report's figures: the leaderboard (mean ± std per group) and the paired differences to the best group."""

import math
from pathlib import Path
from typing import Any

import pandas as pd

from zoo.report.stats import NOT_SEPARABLE


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")  # long row labels are kept whole
    pyplot().close(fig)
    return path


def leaderboard_plot(table: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Any:
    """Per dataset: each group's mean ± std (n >= 2) and its runs as ticks, on an axis scaled to the accuracies."""
    plt = pyplot()
    datasets = list(dict.fromkeys(table.data))
    fig, axes = plt.subplots(len(datasets), 1, squeeze=False,
                             figsize=(8, 1.2 + 0.45 * len(table) + 0.6 * len(datasets)))
    for ax, data in zip(axes[:, 0], datasets, strict=True):
        part = table[table.data == data].iloc[::-1]  # best on top
        y = list(range(len(part)))
        std = part.test_acc_std.fillna(0)
        ax.errorbar(part.test_acc_mean, y, xerr=std, fmt="o", capsize=4, color="C0")
        for i, group in zip(y, part.group, strict=True):
            accs = runs.test_acc[(runs.group == group) & (runs.status == "done")]
            ax.plot(accs, [i] * len(accs), "|", color="C1", markersize=10)
        accs = runs.test_acc[(runs.data == data) & (runs.status == "done")]
        lo, hi = min((part.test_acc_mean - std).min(), accs.min()), max((part.test_acc_mean + std).max(), accs.max())
        pad = max(0.1 * (hi - lo), 0.002)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_yticks(y, list(part.label))
        ax.set(title=f"{data}: test accuracy (mean ± std over seeds; | = one run)", xlabel="test accuracy")
        ax.grid(axis="x", alpha=0.3)
    save(fig, path)
    return fig


def pairs_plot(title: str, summary: pd.DataFrame, pairs: pd.DataFrame, path: Path, level: float) -> Any:
    """Each group's difference to the best group with its CI (per node where predictions exist, else per seed),
    coloured by the tables' verdict."""
    best = summary.attrs["best"]
    rows = []
    for r in summary.itertuples(index=False):
        if r.model == best:
            continue
        hit = pairs[(pairs.a == best) & (pairs.b == r.model)] if len(pairs) else pairs
        if len(hit):  # per node: best - other, turned into other - best
            p = hit.iloc[0]
            rows.append((r.model, -p.difference, -p.ci_high, -p.ci_low, "per node", p.verdict))
        elif not math.isnan(r.ci_low):
            rows.append((r.model, r.diff_mean, r.ci_low, r.ci_high, "per seed", r.verdict))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.5 * max(len(rows), 1)))
    for i, (_, diff, low, high, unit, verdict) in enumerate(rows[::-1]):
        separable = not verdict.startswith(NOT_SEPARABLE)  # the tables' verdict, not the bars alone
        ax.errorbar([diff], [i], xerr=[[diff - low], [high - diff]], fmt="o", capsize=4,
                    color="C3" if separable else "C7")
        ax.annotate(f"{unit}: {'separable' if separable else 'not separable'}", (high, i), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(list(range(len(rows))), [r[0] for r in rows[::-1]])
    if not rows:
        ax.text(0.5, 0.5, "no paired comparison (one group, or no shared split)", ha="center", va="center",
                transform=ax.transAxes)
    ax.set(title=f"{title}: test accuracy difference to {best} ({level:.0%} CI)", xlabel=f"model − {best}")
    ax.grid(axis="x", alpha=0.3)
    save(fig, path)
    return fig
