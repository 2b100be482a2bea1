"""Label-rate curves: each model's test accuracy against how many training nodes are labelled, with CIs.

A sweep over ``data.split.label_rate`` (a share of each class's nodes) or ``data.split.labels_per_class``
(e.g. ``compare=nyc_label_rates``, ``compare=cora_label_rates``) gives one family per rate (the rate shapes the
split: :data:`zoo.report.runs.SPLIT_SHAPE`), each with its own paired tables. Here the groups that differ only in the rate
are joined into one curve per model. A point's CI comes from the runs' ``predictions.csv`` by the design of its
(split, node) tests (:func:`zoo.report.stats.accuracy_ci`: the node bootstrap for repeated k-fold, the crossed
splits x nodes variance for random splits); without those, a t interval over the runs' accuracies.
"""

import json
import math
from pathlib import Path

import pandas as pd

from zoo.report import stats, tables
from zoo.report.plots import pyplot, save

RATE_KEYS: tuple[str, ...] = ("data.split.label_rate", "data.split.labels_per_class")
RATE_NAMES = {"data.split.label_rate": "share of labelled nodes per class",
              "data.split.labels_per_class": "labelled nodes per class"}


def _point(part: pd.DataFrame, n_boot: int, level: float) -> tuple[float, float, float, int, str]:
    """Accuracy, CI, number of tests and the CI's method of one model at one rate."""
    found = [tables.read_predictions(Path(r.run), r.test_acc) for r in part.itertuples()]
    if all(p is not None for p in found):
        tests = pd.concat([p.assign(unit=u, run=k) for p, u, k in zip(found, part.unit, part.key, strict=True)],
                          ignore_index=True)
        ci = stats.accuracy_ci(tests.correct.to_numpy(bool), tests.unit.to_numpy(), tests.node.to_numpy(),
                               runs=tests.run.to_numpy(), n_boot=n_boot, level=level)
        return ci.estimate, ci.low, ci.high, len(tests), f"{ci.design}: {ci.method}"
    accs = part.test_acc.to_numpy()
    if len(accs) < 2:
        return float(accs.mean()), math.nan, math.nan, 0, "one run: no interval"
    low, high, _ = stats.mean_ci(accs, level=level)
    return float(accs.mean()), low, high, 0, "t interval over runs (no predictions.csv)"


def rate_curves(runs: pd.DataFrame, table: pd.DataFrame, *, n_boot: int = 10_000, level: float = 0.95) -> pd.DataFrame:
    """One row per dataset, rate key, rate and model (its leaderboard label): runs, tests, accuracy and CI."""
    labels: dict[str, str] = {}
    for family, _, _ in tables.families(table):
        part = tables.family_table(table, family)
        labels.update(zip(part.group, part.label, strict=True))
    done = runs[runs.status == "done"]
    rows = []
    for key in RATE_KEYS:
        rate = done.config.map(lambda c, k=key: float(c[k]) if c.get(k, "None") != "None" else math.nan)
        rated = done.assign(rate=rate).dropna(subset=["rate"])
        if rated.empty:
            continue
        curve = rated.apply(lambda r, k=key: json.dumps([r.model, r.data, r.kind, {c: v for c, v in r.config.items()
                                                                                   if c != k}], sort_keys=True), axis=1)
        for (data, _), part in rated.groupby([rated.data, curve], sort=False):
            if rated.rate[rated.data == data].nunique() < 2:
                continue  # one rate in the whole dataset: no curve
            for value, at in part.groupby("rate", sort=True):
                acc, low, high, tests, method = _point(at, n_boot, level)
                rows.append({"data": data, "rate_key": key, "rate": value, "runs": len(at), "tests": tests,
                             "model": labels.get(at.group.iloc[0], at.model.iloc[0]), "acc": acc, "ci_low": low,
                             "ci_high": high, "level": level, "method": method})
    return pd.DataFrame(rows, columns=["data", "rate_key", "rate", "model", "runs", "tests", "acc", "ci_low",
                                       "ci_high", "level", "method"])


def rate_pairs(node_pairs: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """The node-by-node pairs (:func:`zoo.report.tables.node_pairs`) of every family that has a label rate, with its
    dataset, rate key and rate."""
    parts = []
    for family, pairs in node_pairs.items():
        data, shape = json.loads(family)
        key = next((k for k in RATE_KEYS if shape.get(k, "None") != "None"), None)
        if key is not None and pairs is not None and len(pairs):
            parts.append(pairs.assign(data=data, rate_key=key, rate=float(shape[key])))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["data", "rate_key", "rate", "a", "b"])


def _rate(value: float) -> str:
    return f"{value:g}"


def _to_best(part: pd.DataFrame, pairs: pd.DataFrame, data: str, key: str, rate: float) -> dict[str, str]:
    """One rate's column of the differences table: each model minus the best model at that rate, with its CI."""
    best = part[part.rate == rate].sort_values("acc", ascending=False).model.iloc[0]
    cells = {best: "best"}
    at = pairs[(pairs.data == data) & (pairs.rate_key == key) & (pairs.rate == rate)]
    for pair in at.itertuples():
        if best not in (pair.a, pair.b):
            continue
        low, high = pair.ci_low, pair.ci_high
        other, diff = (pair.b, -pair.difference) if pair.a == best else (pair.a, pair.difference)
        if pair.a == best:  # the CI of best - other, turned into other - best
            low, high = -high, -low
        separable = not pair.verdict.startswith(stats.NOT_SEPARABLE)  # the paired table's Holm verdict
        cells[other] = f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]" + ("" if separable else " n.s.")
    return cells


def curves_markdown(curves: pd.DataFrame, pairs: pd.DataFrame | None = None) -> str:
    pairs = pairs if pairs is not None else pd.DataFrame()
    lines = []
    for (data, key), part in curves.groupby(["data", "rate_key"], sort=False):
        pct = f"{part.level.iloc[0]:.0%}"
        rates = sorted(part.rate.unique())
        order = part.groupby("model").acc.mean().sort_values(ascending=False).index
        lines += [f"## {data}: test accuracy against {key} ({RATE_NAMES[key]})", ""]
        cells = []
        for model in order:
            at = part[part.model == model].set_index("rate")
            cells.append([model, *(f"{at.acc[r]:.3f} [{at.ci_low[r]:.3f}, {at.ci_high[r]:.3f}]" if r in at.index
                                   else "-" for r in rates)])
        lines += ["| model | " + " | ".join(f"{key.split('.')[-1]}={_rate(r)}" for r in rates) + " |",
                  "|" + "---|" * (len(rates) + 1), *("| " + " | ".join(c) + " |" for c in cells)]
        runs = part.groupby("rate").runs.max()
        methods = "; ".join(dict.fromkeys(part.method))
        lines += ["", f"Accuracy over each model's tests at that rate (runs per point: "
                  f"{', '.join(f'{_rate(r)}: {n}' for r, n in runs.items())}) with a {pct} CI ({methods}). "
                  f"Overlapping CIs do not mean two models tie: their paired differences are below and in paired.md, "
                  f"one section per rate.", ""]
        if len(pairs):
            columns = {r: _to_best(part, pairs, data, key, r) for r in rates}
            lines += [f"### {data}: each model minus the best model at that rate, node by node ({pct} CI)", "",
                      "| model | " + " | ".join(f"{key.split('.')[-1]}={_rate(r)}" for r in rates) + " |",
                      "|" + "---|" * (len(rates) + 1),
                      *("| " + " | ".join([model, *(columns[r].get(model, "-") for r in rates)]) + " |"
                        for model in order), "",
                      "The CI and verdict are paired.md's (method by design, Holm's correction over each rate's "
                      "table); n.s.: not separable at this sample size (Holm-adjusted p >= 0.05 or a CI containing 0). "
                      "Every pair at every rate: label_rate_pairs.csv.",
                      ""]
    return "\n".join(lines)


def curves_plot(curves: pd.DataFrame, path: Path) -> Path:
    """One panel per dataset and rate key: accuracy against the rate (log scale), one line per model, CI bars."""
    plt = pyplot()
    panels = list(curves.groupby(["data", "rate_key"], sort=False))
    fig, axes = plt.subplots(len(panels), 1, squeeze=False, figsize=(8, 4.5 * len(panels)))
    for ax, ((data, key), part) in zip(axes[:, 0], panels, strict=True):
        for i, (model, line) in enumerate(part.groupby("model", sort=False)):
            line = line.sort_values("rate")
            err = [line.acc - line.ci_low, line.ci_high - line.acc]
            ax.errorbar(line.rate, line.acc, yerr=err, marker="o", capsize=3, label=model, color=f"C{i % 10}")
        rates = sorted(part.rate.unique())
        ax.set_xscale("log")
        ax.set_xticks(rates, [_rate(r) for r in rates])
        ax.minorticks_off()
        ax.set(title=f"{data}: test accuracy against {RATE_NAMES[key]} ({part.level.iloc[0]:.0%} CI)",
               xlabel=key, ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return save(fig, path)
