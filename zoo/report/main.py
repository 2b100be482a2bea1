"""Compare runs from their run directories alone: ``python -m zoo.report logs/multiruns/<time>``.

Writes into the folder (or ``--out``) and prints:

* ``leaderboard.md`` / ``.csv`` / ``.png``: one row per group of like runs (same effective config but the seed and
  split), mean ± std over seeds; failed, unfinished, damaged and duplicate runs are listed, never counted.
  Evaluations (``eval.py``) are their own groups, named after the training group whose checkpoints they tested.
* ``paired.md``, per dataset and split settings: the accuracy of every run per seed (``paired_<data>.csv``), each
  model's paired difference to the best one over the seeds both ran (t interval and t test over seeds), and, where
  runs wrote ``predictions.csv``, every pair of models compared node by node on the same splits
  (``pairs_<data>.csv``: mean difference, CI and p by the design the tests show, single split, repeated k-fold or
  crossed random splits, :mod:`zoo.report.stats`; wins / ties / losses; the splits left without predictions).
  Each table's p-values are Holm-adjusted; a pair is separable only when its adjusted p is below 0.05 and its CI
  excludes 0, else "not separable at this sample size". ``paired_<data>.png`` plots the differences to the best
  model; ``best_map_<data>.png`` is the best model's map (NYC), from its median-accuracy run.
* ``selection.csv`` where runs come from a settings grid (``hydra/sweeper=grid``, e.g. ``compare=nyc``): per model
  and split (and label rate, or any split setting that varies), the grid point kept on validation alone (nested
  selection); only the kept runs are compared.
* ``label_rates.md`` / ``.csv`` / ``.png`` where runs differ in ``data.split.label_rate`` or
  ``data.split.labels_per_class``: each model's test accuracy against the rate, with CIs (by design), and each
  model's paired difference to the best one at every rate (``label_rate_pairs.csv``: every pair of models node by
  node at each rate; :mod:`zoo.report.curves`).
* With ``--wandb`` (or when the runs logged to W&B), the same tables and figures as one W&B run.

Exit code 2, with the reason, when there is nothing to compare (no run, or no finished run).
"""

import argparse
import logging
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError, ZooError
from zoo.files import HYDRA_DIR
from zoo.report import plots, tables
from zoo.report.curves import curves_markdown, curves_plot, rate_curves, rate_pairs
from zoo.report.runs import NothingToCompare, collect

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`report` wrote: the markdown text, the tables and the figures by key."""

    text: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    wandb_dir: str | None = None


def _nothing_to_compare(root: Path, runs: pd.DataFrame) -> NothingToCompare:
    if runs.empty:
        return NothingToCompare(f"No run directories (folders holding .hydra/) under {root}: give a sweep folder "
                                f"(logs/multiruns/<time>) or a run directory.")
    counts = runs.status.value_counts()
    found = ", ".join(f"{n} {status}" for status, n in counts.items())
    failed = runs[runs.status == "failed"]
    first = f"; first failure: {failed.reason.iloc[0]}" if len(failed) else ""
    return NothingToCompare(f"Nothing to compare under {root}: none of its {len(runs)} runs finished with a test "
                            f"accuracy ({found}{first}).")


def _section(runs: pd.DataFrame, table: pd.DataFrame, family: str, title: str, stem: str, out: Path,
             result: Report, n_boot: int, level: float) -> str:
    wide = tables.per_seed(runs, table, family)
    summary = tables.seed_summary(wide, level=level)
    pairs = tables.node_pairs(runs, table, family, n_boot=n_boot, level=level)
    wide.to_csv(out / f"paired_{stem}.csv")
    result.tables.update({f"{stem}/per_seed": wide, f"{stem}/paired_by_seed": summary})
    text = tables.seeds_markdown(title, wide, summary, level)
    if len(pairs):
        pairs.to_csv(out / f"pairs_{stem}.csv", index=False)
        result.tables[f"{stem}/paired_by_node"] = pairs
        text += "\n" + tables.pairs_markdown(title, pairs, level)
    elif wide.shape[1] >= 2:
        text += "\nNo per-node comparison: no two models wrote predictions.csv on a shared split.\n"
    else:
        text += "\nOne model only: nothing to pair.\n"
    if wide.shape[1] >= 2:
        result.images[f"{stem}/paired_plot"] = out / f"paired_{stem}.png"
        plots.pairs_plot(title, summary, pairs, out / f"paired_{stem}.png", level)
    best = table[table.family == family].iloc[0]
    run = tables.best_run(runs, best.group)
    if (run / "predictions_map.png").is_file():
        shutil.copyfile(run / "predictions_map.png", out / f"best_map_{stem}.png")
        result.images[f"{stem}/best_map"] = out / f"best_map_{stem}.png"
        text += f"\nBest model's map: best_map_{stem}.png (from {run}, its median-accuracy run).\n"
    return text


def report(root: Path, out_dir: Path | None = None, *, n_boot: int = 10_000, level: float = 0.95,
           wandb: bool | None = None, wandb_settings: dict[str, Any] | None = None) -> Report:
    """Compare the runs under ``root`` and write the tables and figures into ``out_dir`` (default: ``root``).

    Args:
        wandb: Log the tables and figures to W&B; ``None``: when the finished runs logged to W&B.
        wandb_settings: ``project``, ``entity``, ``mode`` (default: the first finished run's ``logger.wandb``).

    Raises:
        NothingToCompare: no run directory under ``root``, or no finished run.
    """
    root, out = Path(root), Path(out_dir or root)
    run = next((p for p in (out.resolve(), *out.resolve().parents) if (p / HYDRA_DIR).is_dir()), None)
    if run is not None:  # a single run given as the folder, or --out inside one
        raise ConfigError(f"The report would be written into the run directory {run}: Zoo never writes into a "
                          f"run. Give --out <folder> (e.g. the folder that holds the run).")
    records = collect(root)
    runs = tables.frame(records)
    if not (runs.status == "done").any():
        raise _nothing_to_compare(root, runs)
    out.mkdir(parents=True, exist_ok=True)
    selection = tables.select(runs)
    table = tables.leaderboard(runs)
    result = Report(text="", tables={"leaderboard": table.drop(columns=["group", "family", "config"])})
    result.tables["leaderboard"].to_csv(out / "leaderboard.csv", index=False)
    board = tables.leaderboard_markdown(table, runs)
    (out / "leaderboard.md").write_text(board)
    result.images["leaderboard_plot"] = out / "leaderboard.png"
    plots.leaderboard_plot(table, runs, out / "leaderboard.png")

    sections, seeds, node_pairs = [], [], {}
    for family, title, stem in tables.families(table):
        sections.append(_section(runs, table, family, title, stem, out, result, n_boot, level))
        seeds.append(result.tables[f"{stem}/per_seed"].reset_index().assign(data=title))
        node_pairs[family] = result.tables.get(f"{stem}/paired_by_node")
    per_seed = pd.concat(seeds, ignore_index=True)
    per_seed[["data", *(c for c in per_seed.columns if c != "data")]].to_csv(out / "per_seed.csv", index=False)
    if len(selection):
        selection.drop(columns=["group", "family"]).to_csv(out / "selection.csv", index=False)
        result.tables["selection"] = selection.drop(columns=["group", "family"])
        sections.append(tables.selection_markdown(selection))
    curves = rate_curves(runs, table, n_boot=n_boot, level=level)
    if len(curves):
        pairs = rate_pairs(node_pairs)
        curves.to_csv(out / "label_rates.csv", index=False)
        pairs.to_csv(out / "label_rate_pairs.csv", index=False)
        (out / "label_rates.md").write_text(curves_markdown(curves, pairs))
        result.tables.update(label_rates=curves, label_rate_pairs=pairs)
        result.images["label_rates_plot"] = curves_plot(curves, out / "label_rates.png")
        sections.insert(0, curves_markdown(curves, pairs))
    paired = f"# Paired comparison of the runs under {root}\n\n" + "\n".join(sections)
    (out / "paired.md").write_text(paired)
    result.text = board + "\n" + paired

    done = [r for r in records if r.status == "done"]
    settings = wandb_settings or next((r.wandb for r in done if r.wandb), None)
    if wandb or (wandb is None and settings):
        from zoo.report.to_wandb import log_report

        result.wandb_dir = log_report(out, result.tables, result.images, settings)
    return result


class ReportCallback(Callback):
    """Hydra callback: at the end of a multirun, write the report into the sweep folder (and to W&B when the
    sweep's ``logger`` has ``wandb``), e.g. ``python train.py compare=nyc``."""

    def __init__(self, n_boot: int = 10_000, level: float = 0.95) -> None:
        self.n_boot, self.level = n_boot, level

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        settings = None
        if OmegaConf.select(config, "logger.wandb", throw_on_resolution_failure=False) is not None:
            settings = {k: OmegaConf.select(config, f"logger.wandb.{k}", throw_on_resolution_failure=False)
                        for k in ("project", "entity", "mode")}
        try:
            result = report(sweep_dir, n_boot=self.n_boot, level=self.level, wandb=settings is not None,
                            wandb_settings=settings)
        except (ZooError, OSError) as err:
            log.error("No comparison written: %s", err)
            return
        log.info("Comparison written to %s (leaderboard.md, paired.md):\n%s", sweep_dir, result.text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.report", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a sweep folder (logs/multiruns/<time>) or any folder of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: dir)")
    parser.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    parser.add_argument("--level", type=float, default=0.95, help="confidence level of the CIs (default: 0.95)")
    parser.add_argument("--wandb", action=argparse.BooleanOptionalAction, default=None,
                        help="log the report to W&B (default: when the runs logged to W&B)")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.WARNING)
    try:
        result = report(args.dir, args.out, n_boot=args.n_boot, level=args.level, wandb=args.wandb)
    except ZooError as err:
        print(f"zoo.report: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(result.text, end="")
    print(f"\nWritten: {args.out or args.dir}/leaderboard.md, paired.md (and .csv, .png)"
          + (f"; W&B run files in {result.wandb_dir}" if result.wandb_dir else ""))
