"""Paired comparison of models run on the same seeds (same splits): ``python -m zoo.run.paired <sweep dir>``.

Next to :mod:`zoo.run.compare`'s leaderboard (which it also writes), for every dataset: a per-seed table of test
accuracy (one row per seed, one column per model), each model's mean ± std, and its paired difference to the best
model over the seeds both ran (mean ± std of the per-seed differences, and on how many seeds it won, tied, lost).
It also copies the best model's ``predictions_map.png`` (from its run with the median test accuracy) next to the
tables. A Hydra callback (:class:`PairedReport`) writes all of it at the end of a multirun, e.g.
``python train.py compare=nyc``.
"""

import argparse
import logging
import shutil
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from zoo.run.compare import collect, compare

log = logging.getLogger(__name__)


def per_seed(runs: pd.DataFrame, data: str) -> pd.DataFrame:
    """Test accuracy ``[seeds, models]`` of the finished runs on ``data``; models ordered by mean, best first."""
    done = runs[(runs.status == "done") & (runs.data == data)].dropna(subset=["seed", "test_acc"])
    table = done.pivot_table(index="seed", columns="model", values="test_acc", aggfunc="mean")
    table.index = table.index.astype(int)
    return table[table.mean().sort_values(ascending=False).index]


def paired_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: seeds, mean, std, and the paired difference to the best model (mean, std, wins/ties/losses)."""
    best = table.columns[0]
    rows = []
    for model in table.columns:
        diff = (table[model] - table[best]).dropna()  # seeds both ran
        rows.append({"model": model, "seeds": int(table[model].notna().sum()), "mean": table[model].mean(),
                     "std": table[model].std(), f"diff_to_{best}_mean": diff.mean(), f"diff_to_{best}_std": diff.std(),
                     "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum())})
    return pd.DataFrame(rows)


def to_markdown(data: str, table: pd.DataFrame, summary: pd.DataFrame) -> str:
    best = table.columns[0]
    lines = [f"## {data}: test accuracy, paired by seed (same split for every model)", "",
             f"| model | seeds | mean ± std | paired diff. to {best} (mean ± std) | wins / ties / losses |",
             "|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        d_mean, d_std = getattr(r, f"diff_to_{best}_mean"), getattr(r, f"diff_to_{best}_std")
        d_mean = 0.0 if abs(d_mean) < 5e-4 else d_mean  # no "-0.000"
        diff = "-" if r.model == best else f"{d_mean:+.3f} ± {0.0 if pd.isna(d_std) else d_std:.3f}"
        wtl = "-" if r.model == best else f"{r.wins} / {r.ties} / {r.losses}"
        std = 0.0 if pd.isna(r.std) else r.std
        lines.append(f"| {r.model} | {r.seeds} | {r.mean:.3f} ± {std:.3f} | {diff} | {wtl} |")
    lines += ["", "| seed | " + " | ".join(table.columns) + " |", "|---|" + "---|" * len(table.columns)]
    for seed, row in table.iterrows():
        lines.append(f"| {seed} | " + " | ".join("-" if pd.isna(v) else f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines) + "\n"


def best_run(runs: pd.DataFrame, data: str, model: str) -> Path:
    """The run directory of ``model`` on ``data`` with the median test accuracy (the lower middle one)."""
    done = runs[(runs.status == "done") & (runs.data == data) & (runs.model == model)].dropna(subset=["test_acc"])
    done = done.sort_values(["test_acc", "seed"]).reset_index(drop=True)
    return Path(done.run.iloc[(len(done) - 1) // 2])


def report(root: Path, out_dir: Path | None = None) -> str:
    """Write the leaderboard (``leaderboard.*``), ``paired.md`` and ``paired_<data>.csv`` and the best model's map."""
    out = Path(out_dir or root)
    compare(root, out)
    runs = collect(root)
    texts = []
    for data in sorted(runs.data.dropna().unique()):
        table = per_seed(runs, data)
        if table.empty:
            continue
        summary = paired_summary(table)
        table.to_csv(out / f"paired_{data}.csv")
        text = to_markdown(data, table, summary)
        run = best_run(runs, data, table.columns[0])
        png = run / "predictions_map.png"
        if png.is_file():
            shutil.copyfile(png, out / f"best_map_{data}.png")
            text += f"\nBest model's map: best_map_{data}.png (from {run}, its median-accuracy seed).\n"
        texts.append(text)
    text = "\n".join(texts)
    (out / "paired.md").write_text(text)
    return text


class PairedReport(Callback):
    """Hydra callback: at the end of a multirun, write the leaderboard and the paired tables into the sweep folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            text = report(sweep_dir)
        except SystemExit as err:  # no finished run: compare's message
            log.error("No comparison written: %s", err)
            return
        log.info("Comparison written to %s (paired.md, leaderboard.md):\n%s", sweep_dir, text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.run.paired", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a sweep folder (logs/multiruns/<time>) or any folder of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write the tables (default: dir)")
    args = parser.parse_args(argv)
    print(report(args.dir, args.out), end="")
    print(f"\nWritten: {(args.out or args.dir) / 'paired.md'} (and leaderboard.md, paired_<data>.csv)")


if __name__ == "__main__":
    main()
