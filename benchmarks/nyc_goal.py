"""The flagship goal on NYC, checked from a label-rate report (docs/nyc.md):

    python benchmarks/nyc_goal.py <folder with label_rates.csv and label_rate_pairs.csv>

At every label rate, the delineation model against the best parameter-free baseline (prior, flow vote, label
propagation) and against the best feature model (logreg or mlp on flow shares), each the best by accuracy at that
rate: the paired difference node by node, its CI (the wider of the bootstraps over nodes and over repeats and
nodes) and whether the goal holds (the CI excludes 0 above it; against the feature models the goal asks it at 10 %
labels or fewer). Prints a markdown table.
"""

import argparse
import math
from pathlib import Path

import pandas as pd

MODEL = "delineation_gcn"
PARAMETER_FREE = ("prior", "flow_vote", "label_propagation")
FEATURE_MODELS = ("logreg", "mlp")
FEATURE_GOAL_UP_TO = 0.10  # the goal against the feature models: at 10 % labels or fewer


def difference(pairs: pd.DataFrame, rate: float, other: str) -> tuple[float, float, float]:
    """Delineation minus ``other`` at ``rate``: mean and CI."""
    row = pairs[(pairs.rate == rate) & (((pairs.a == MODEL) & (pairs.b == other)) |
                                        ((pairs.a == other) & (pairs.b == MODEL)))].iloc[0]
    low = min(v for v in (row.ci_low, row.repeat_ci_low) if not math.isnan(v))
    high = max(v for v in (row.ci_high, row.repeat_ci_high) if not math.isnan(v))
    return (row.difference, low, high) if row.a == MODEL else (-row.difference, -high, -low)


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
            diff, low, high = difference(pairs, rate, best)
            met = "met" if low > 0 else "not met" if applies else "(not asked)"
            cells += [f"{diff:+.3f} [{low:+.3f}, {high:+.3f}] vs {best} ({acc[best]:.3f})", met]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
