"""Leaderboard of a sweep from its run directories alone: ``python -m zoo.run.compare logs/multiruns/<time>``.

Every folder under the given one that holds ``.hydra/`` is a run: its model and data come from
``.hydra/hydra.yaml`` (the config choices), its results from ``metrics.json``; a run with ``error.txt``
failed. Runs of the same model and data (seeds) are grouped: test accuracy mean ± std, parameters, fit
time, epochs. Writes ``leaderboard.csv``, ``leaderboard.md`` and ``leaderboard.png`` and prints the table.
"""

import argparse
import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from zoo.run.sweeps import ERROR_FILE

COLUMNS = ["model", "data", "runs", "failed", "test_acc_mean", "test_acc_std", "params", "fit_seconds", "epochs"]


def read_run(run_dir: Path) -> dict | None:
    """One row per run directory: model, data, seed, status and final metrics (None: not a run)."""
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    if not hydra_file.is_file():
        return None
    choices = OmegaConf.load(hydra_file).hydra.runtime.choices
    row = {"run": str(run_dir), "model": choices.get("model"), "data": choices.get("data")}
    metrics_file = run_dir / "metrics.json"
    if (run_dir / ERROR_FILE).is_file():
        row["status"] = "failed"
    elif metrics_file.is_file():
        row["status"] = "done"
        metrics = json.loads(metrics_file.read_text())
        row.update(seed=metrics.get("seed"), test_acc=metrics.get("test/acc"), params=metrics.get("params"),
                   fit_seconds=metrics.get("fit_seconds"), epochs=metrics.get("epochs"))
    else:
        row["status"] = "unfinished"
    return row


def collect(root: Path) -> pd.DataFrame:
    """Every run under ``root`` (a sweep folder, a folder of sweeps, or one run directory)."""
    dirs = sorted({p.parent.parent for p in Path(root).glob("**/.hydra/hydra.yaml")})
    rows = [row for d in dirs if (row := read_run(d)) is not None]
    if not rows:
        raise SystemExit(f"No run directories (with .hydra/hydra.yaml) under {root}: give a sweep or run folder.")
    return pd.DataFrame(rows)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, data), best test accuracy first within each dataset."""
    for col in ("test_acc", "params", "fit_seconds", "epochs"):
        if col not in runs:
            runs[col] = float("nan")
    runs = runs.assign(done=runs.status == "done", failed=runs.status == "failed")
    done = runs[runs.done]
    stats = done.groupby(["model", "data"]).agg(
        test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"), params=("params", "first"),
        fit_seconds=("fit_seconds", "mean"), epochs=("epochs", "mean"))
    counts = runs.groupby(["model", "data"]).agg(runs=("done", "sum"), failed=("failed", "sum"))
    table = counts.join(stats).reset_index()
    table["test_acc_std"] = table["test_acc_std"].fillna(0.0)  # a single seed has no spread
    table = table.sort_values(["data", "test_acc_mean", "model"], ascending=[True, False, True], na_position="last")
    return table[COLUMNS].reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    header = ["model", "data", "test acc (mean ± std)", "runs", "failed", "params", "fit time (s)", "epochs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table.itertuples():
        acc = "-" if pd.isna(r.test_acc_mean) else f"{r.test_acc_mean:.4f} ± {r.test_acc_std:.4f}"
        params = "-" if pd.isna(r.params) else f"{r.params:,.0f}"
        fit = "-" if pd.isna(r.fit_seconds) else f"{r.fit_seconds:.1f}"
        epochs = "-" if pd.isna(r.epochs) else f"{r.epochs:g}"
        lines.append(f"| {r.model} | {r.data} | {acc} | {r.runs} | {r.failed} | {params} | {fit} | {epochs} |")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    """Test accuracy per model (bars, ± std), one group of bars per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = table.pivot(index="data", columns="model", values="test_acc_mean")
    std = table.pivot(index="data", columns="model", values="test_acc_std")
    ax = mean.plot.bar(yerr=std, capsize=3, rot=0, figsize=(max(5, 1.5 * mean.size), 4))
    ax.set(ylabel="test accuracy", xlabel="", title="Test accuracy (mean ± std over seeds)")
    ax.legend(title="model", bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=100)
    plt.close(ax.figure)


def compare(root: Path, out_dir: Path | None = None) -> pd.DataFrame:
    """Build the leaderboard of the runs under ``root`` and write it to ``out_dir`` (default: ``root``)."""
    table = leaderboard(collect(root))
    out = Path(out_dir or root)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "leaderboard.csv", index=False)
    (out / "leaderboard.md").write_text(to_markdown(table))
    plot(table, out / "leaderboard.png")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.run.compare", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a sweep folder (logs/multiruns/<time>) or any folder of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write leaderboard.* (default: dir)")
    args = parser.parse_args(argv)
    table = compare(args.dir, args.out)
    print(to_markdown(table), end="")
    print(f"\nWritten: {(args.out or args.dir) / 'leaderboard.md'} (.csv, .png)")


if __name__ == "__main__":
    main()
