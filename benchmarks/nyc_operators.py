"""Which flow operator? Validation and test accuracy of the rule baselines for every direction x normalisation.

``python benchmarks/nyc_operators.py [--data-dir DIR] [--seeds 10]`` prints a markdown table: ``flow_vote`` and
``label_propagation`` (1, 3 and 10 steps, alpha 0.9) for each operator of :mod:`zoo.nets.layers.flow_operator`, mean ±
std over split seeds 0..9 (the splits of ``data=nyc_zip seed=<s>``). The rule nets train only a temperature, which
never changes their argmax, so their untrained predictions here are exactly those of ``python train.py
model=<net> data=nyc_zip``. Choose by the validation column; the NYC experiments did.
"""

import argparse
import itertools
import os
from pathlib import Path

import torch

from datamodules.nyc_zip import NYCZipDataModule
from zoo.nets.flow_vote import FlowVote
from zoo.nets.label_propagation import LabelPropagation
from zoo.nets.layers.flow_operator import DIRECTIONS, NORMALIZATIONS


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
        dm = NYCZipDataModule(data_dir, download=False, split_seed=seed)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    print(to_markdown(accuracies(args.data_dir, args.seeds)), end="")


if __name__ == "__main__":
    main()
