"""Which flow operator? Validation and test accuracy of the rule baselines for every direction x normalisation.

``python benchmarks/nyc_operators.py [--data-dir DIR] [--seeds 10]`` prints a markdown table: ``flow_vote`` and
``label_propagation`` (1, 3 and 10 steps, alpha 0.9) for each operator of :mod:`zoo.nets.layers.flow_operator`, mean ±
std over split seeds 0..9 (the splits of ``data=nyc_zip seed=<s>``). The rule nets train only a temperature, which
never changes their argmax, so their untrained predictions here are exactly those of ``python train.py
model=<net> data=nyc_zip``. Choose by the validation column; the NYC experiments did.

A second table diagnoses GCN's operators on the whole graph (no label read): ``gcn`` (PyG's ``gcn_norm`` of the
edges as stored) and the share operators ``row``/``sym`` of :mod:`zoo.transforms.share_operator`: the median share
of a ZIP's own self-loop in its row, and where one step of the operator sends the one-hot prior (the share of ZIPs
then pointed at Manhattan, and the accuracy of that step's argmax).
"""

import argparse
import itertools
import os
from pathlib import Path

import torch
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import one_hot, scatter

from datamodules.nyc_zip import NYCZipDataModule
from datamodules.nyc_zip_dataset import BOROUGHS
from datamodules.splits import RandomSplit
from zoo.nets.flow_vote import FlowVote
from zoo.nets.label_propagation import LabelPropagation
from zoo.nets.layers.flow_operator import DIRECTIONS, NORMALIZATIONS
from zoo.transforms.share_operator import SHARE_OPERATORS, share_operator


def candidates() -> dict[str, torch.nn.Module]:
    nets: dict[str, torch.nn.Module] = {}
    for direction, norm in itertools.product(DIRECTIONS, NORMALIZATIONS):
        nets[f"flow_vote {direction} {norm}"] = FlowVote(5, direction, norm)
        for steps in (1, 3, 10):
            nets[f"label_propagation {direction} {norm} {steps} steps"] = LabelPropagation(5, direction, norm, steps)
    return nets


@torch.no_grad()
def accuracies(data_dir: Path, seeds: int) -> dict[str, torch.Tensor]:
    """``name -> [seeds, 2]`` (validation, test accuracy) of every candidate."""
    results: dict[str, list[tuple[float, float]]] = {}
    nets = candidates()
    for seed in range(seeds):
        dm = NYCZipDataModule(data_dir, download=False, split=RandomSplit(seed=seed))
        dm.setup()
        d = dm.data
        for name, net in nets.items():
            right = net(d.x, d.edge_index, d.edge_weight, d.y_train).argmax(1) == d.y
            results.setdefault(name, []).append((right[d.val_mask].float().mean().item(),
                                                 right[d.test_mask].float().mean().item()))
    return {name: torch.tensor(r) for name, r in results.items()}


def to_markdown(results: dict[str, torch.Tensor]) -> str:
    lines = ["| model, operator | val acc | test acc |", "|---|---|---|"]
    for name, r in sorted(results.items(), key=lambda kv: -kv[1][:, 0].mean()):
        std = r.std(0) if len(r) > 1 else torch.zeros(2)
        lines.append(f"| {name} | {r[:, 0].mean():.3f} ± {std[0]:.3f} | {r[:, 1].mean():.3f} ± {std[1]:.3f} |")
    return "\n".join(lines) + "\n"


@torch.no_grad()
def gcn_operators(data_dir: Path) -> str:
    """Markdown: each GCN operator's median self-loop share and one step of it applied to the one-hot prior."""
    dm = NYCZipDataModule(data_dir, download=False)
    dm.setup()
    d, n = dm.data, dm.data.num_nodes
    operators = {"gcn": gcn_norm(d.edge_index, d.edge_weight.float(), n, add_self_loops=True)}
    for operator, w in itertools.product(SHARE_OPERATORS, (0.5, 1.0)):
        operators[f"{operator}, self_loop_weight={w}"] = share_operator(d.edge_index, d.edge_weight, n, operator, w)
    prior = one_hot(d.initial_feat, len(BOROUGHS))  # [N, 5]
    manhattan = BOROUGHS.index("Manhattan")
    lines = ["| operator | median self-loop share | one step of the prior: ZIPs at Manhattan | its accuracy |",
             "|---|---|---|---|", f"| (the prior itself) | - | {(d.initial_feat == manhattan).float().mean():.3f} | "
             f"{(d.initial_feat == d.y).float().mean():.3f} |"]
    for name, (index, weight) in operators.items():
        loop = index[0] == index[1]
        total = scatter(weight, index[1], dim=0, dim_size=n, reduce="sum")
        own = scatter(weight[loop], index[1][loop], dim=0, dim_size=n, reduce="sum") / total
        guess = scatter(weight.view(-1, 1) * prior[index[0]], index[1], dim=0, dim_size=n, reduce="sum").argmax(1)
        lines.append(f"| {name} | {own.median():.3f} | {(guess == manhattan).float().mean():.3f} | "
                     f"{(guess == d.y).float().mean():.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    print(to_markdown(accuracies(args.data_dir, args.seeds)))
    print(gcn_operators(args.data_dir), end="")


if __name__ == "__main__":
    main()
