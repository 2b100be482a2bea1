"""The flagship goal on NYC, checked from a label-rate report (docs/nyc.md):

    python benchmarks/nyc_goal.py <folder with label_rates.csv and label_rate_pairs.csv>

At every label rate, the delineation model against the best parameter-free baseline (prior, flow vote, label
propagation) and against the best feature model (logreg or mlp on flow shares), each the best by accuracy at that
rate: the paired difference node by node, its CI (by the tests' design: the bootstrap over ZIPs, each with the
mean of its repeats) and whether the goal holds (the report's verdict: the CI excludes 0 and the Holm-adjusted p of
the rate's table is below 0.05; against the feature models the goal asks it at 10 % labels or fewer). Prints a
markdown table.
"""

import argparse
from pathlib import Path

import pandas as pd

MODEL = "delineation_gcn"
PARAMETER_FREE = ("prior", "flow_vote", "label_propagation")
FEATURE_MODELS = ("logreg", "mlp")
FEATURE_GOAL_UP_TO = 0.10  # the goal against the feature models: at 10 % labels or fewer


def difference(pairs: pd.DataFrame, rate: float, other: str) -> tuple[float, float, float, bool]:
    """Delineation minus ``other`` at ``rate``: mean, CI, and whether the report calls delineation better."""
    row = pairs[(pairs.rate == rate) & (((pairs.a == MODEL) & (pairs.b == other)) |
                                        ((pairs.a == other) & (pairs.b == MODEL)))].iloc[0]
    better = str(row.verdict).startswith(f"{MODEL} better")
    if row.a == MODEL:
        return row.difference, row.ci_low, row.ci_high, better
    return -row.difference, -row.ci_high, -row.ci_low, better


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="folder of a compare=nyc_label_rates report")
    folder = parser.parse_args().report
    curves = pd.read_csv(folder / "label_rates.csv")
    pairs = pd.read_csv(folder / "label_rate_pairs.csv")
    print("| labelled ZIPs | delineation | vs best parameter-free | goal | vs best feature model | goal |")
    print("|---|---|---|---|---|---|")
    for rate, part in curves.groupby("rate"):
        acc = part.set_index("model").acc
        cells = [f"{rate:.0%}", f"{acc[MODEL]:.3f}"]
        for group, applies in ((PARAMETER_FREE, True), (FEATURE_MODELS, rate <= FEATURE_GOAL_UP_TO + 1e-9)):
            best = acc[[m for m in group if m in acc.index]].idxmax()
            diff, low, high, better = difference(pairs, rate, best)
            met = "met" if better else "not met" if applies else "(not asked)"
            cells += [f"{diff:+.3f} [{low:+.3f}, {high:+.3f}] vs {best} ({acc[best]:.3f})", met]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
