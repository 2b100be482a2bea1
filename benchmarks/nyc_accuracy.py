"""Paired per-seed test accuracy of the delineation model against parameter-free baselines on the NYC ZIP splits.

    python benchmarks/nyc_accuracy.py --sweep-dir DIR [--data-dir DIR] [--out benchmarks/results/nyc_delineation.md]

``DIR`` is the Hydra sweep directory of ``python train.py -m experiment=delineation_nyc_zip seed=0,...,9
hydra.sweep.dir=DIR``: each run's ``metrics.json`` gives the model's test accuracy and seed. The baselines are
computed here on the same masks (``datamodules.splits.RandomSplit``, ``data.split.seed = seed``, 60/20/20) from
the TRAINING labels only; each row of the table is one split, and the tests pair the model with the best
parameter-free baseline and with the best baseline overall (highest mean): a two-sided sign test over the splits
where they differ and a Wilcoxon signed-rank test (``scipy.stats``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/nyc_accuracy.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy import stats  # noqa: E402

from datamodules.nyc_zip import NYCZipDataModule  # noqa: E402
from datamodules.splits import RandomSplit  # noqa: E402

Baseline = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def rownorm(m: torch.Tensor) -> torch.Tensor:
    return m / m.sum(1, keepdim=True).clamp_min(1e-12)


def colnorm(m: torch.Tensor) -> torch.Tensor:
    return m / m.sum(0, keepdim=True).clamp_min(1e-12)


def propagate(op: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, steps: int = 30) -> torch.Tensor:
    """Label propagation: scores ``<- rownorm(op) scores`` with the training rows clamped to their labels."""
    op, f = rownorm(op), labels.clone()
    for _ in range(steps):
        f = op @ f
        f[train] = labels[train]
    return f


def logistic_regression(features: torch.Tensor, y: torch.Tensor, train: torch.Tensor, l2: float = 1e-2
                        ) -> torch.Tensor:
    """Multinomial logistic regression (L-BFGS, L2 penalty ``l2 / 2 |W|^2`` on the summed loss) -> logits [N, C]."""
    c = int(y.max()) + 1
    w = torch.zeros(features.size(1), c, requires_grad=True)
    b = torch.zeros(c, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features[train] @ w + b, y[train], reduction="sum") + 0.5 * l2 * (w**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return (features @ w + b).detach()


def baselines(adj: torch.Tensor) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Name -> ``f(labels [N, C] one-hot on training rows, train mask) -> scores [N, C]``.

    ``adj[i, j]``: commuters living in ZIP ``j`` and working in ZIP ``i`` (self-flows removed).
    """
    out_share, in_share = rownorm(adj), rownorm(adj.T)  # shares of a ZIP's flows to / from each ZIP
    col_out, col_in = colnorm(adj), colnorm(adj.T)
    return {
        "flow vote (in + out shares)": lambda y, tr: (out_share + in_share) @ y,
        "flow vote (shares, per borough)": lambda y, tr: colnorm(out_share @ y) + colnorm(in_share @ y),
        "flow vote (column shares)": lambda y, tr: (col_out + col_in) @ y,
        "flow vote (all four shares)": lambda y, tr: (out_share + in_share + col_out + col_in) @ y,
        "label propagation (row-normalised, both directions)": lambda y, tr: propagate(out_share + in_share, y, tr),
        "label propagation (column-normalised, both directions)": lambda y, tr: propagate(col_out + col_in, y, tr),
        # Linear, on the model's own round-0 inputs: the shares of a ZIP's flows to / from each borough's
        # training ZIPs (10 features).
        "logistic regression (in + out shares)": lambda y, tr: logistic_regression(
            torch.cat([out_share @ y, in_share @ y], 1), y.argmax(1), tr),
    }


def model_accuracies(sweep_dir: Path) -> dict[int, float]:
    """Seed -> test accuracy of every ``metrics.json`` under ``sweep_dir``."""
    found = {}
    for path in sorted(sweep_dir.glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        found[int(metrics["seed"])] = float(metrics["test/acc"])
    if not found:
        raise SystemExit(f"{sweep_dir}: no */metrics.json (run the sweep first, see the module docstring).")
    return found


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep-dir", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    p.add_argument("--name", default="experiment=delineation_nyc_zip")
    p.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    args = p.parse_args(argv)

    model = model_accuracies(args.sweep_dir)
    seeds = sorted(model)
    rows: dict[str, list[float]] = {"prior (initialFeat)": []}
    for seed in seeds:
        dm = NYCZipDataModule(args.data_dir, download=False, split=RandomSplit(seed=seed), include_acs=False,
                              include_prior=True)
        data = dm.load()
        n, c = data.num_nodes, int(data.y.max()) + 1
        adj = torch.zeros(n, n)
        adj[data.edge_index[0], data.edge_index[1]] = data.edge_weight
        adj.fill_diagonal_(0.0)
        labels = torch.zeros(n, c)
        labels[data.train_mask] = F.one_hot(data.y[data.train_mask], c).float()
        test = data.test_mask

        def acc(scores: torch.Tensor, test: torch.Tensor = test, y: torch.Tensor = data.y) -> float:
            return float((scores[test].argmax(1) == y[test]).float().mean())

        rows["prior (initialFeat)"].append(acc(F.one_hot(data.initial_feat, c).float()))
        for name, f in baselines(adj).items():
            rows.setdefault(name, []).append(acc(f(labels, data.train_mask)))
    ours = np.array([model[s] for s in seeds])
    names = ["prior (initialFeat)", *baselines(torch.zeros(1, 1))]
    lines = [f"| split seed | {args.name} | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for i, seed in enumerate(seeds):
        lines.append(f"| {seed} | **{ours[i]:.3f}** | " + " | ".join(f"{rows[k][i]:.3f}" for k in names) + " |")
    lines.append(f"| mean ± sd | **{ours.mean():.3f} ± {ours.std(ddof=1):.3f}** | "
                 + " | ".join(f"{np.mean(rows[k]):.3f} ± {np.std(rows[k], ddof=1):.3f}" for k in names) + " |")
    text = "\n".join(lines) + "\n"
    parameter_free = [k for k in names if not k.startswith("logistic")]
    for label, pool in (("parameter-free baseline", parameter_free), ("baseline", names)):
        best_name = max(pool, key=lambda k: np.mean(rows[k]))
        best = np.array(rows[best_name])
        diff = ours - best
        nonzero = diff[diff != 0]
        sign_p = stats.binomtest(int((nonzero > 0).sum()), len(nonzero)).pvalue if len(nonzero) else 1.0
        wilcoxon_p = stats.wilcoxon(ours, best).pvalue if len(nonzero) else 1.0
        text += (
            f"\nBest {label}: {best_name} ({best.mean():.3f}). Model - it: {diff.mean():+.3f} mean; "
            f"model better on {(diff > 0).sum()}, worse on {(diff < 0).sum()}, equal on {(diff == 0).sum()} of "
            f"{len(seeds)} splits; two-sided sign test p = {sign_p:.3g}, Wilcoxon signed-rank p = {wilcoxon_p:.3g}.\n"
        )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
