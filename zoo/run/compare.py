"""Leaderboard of runs from their run directories alone: ``python -m zoo.run.compare logs/multiruns/<time>``.

Every folder under the given one that holds ``.hydra/`` is a run: its model and data come from ``.hydra/hydra.yaml``
(the config choices), its full configuration from ``.hydra/config.yaml``, its results from ``metrics.json``.

* Only like runs are averaged: runs are grouped by their whole configuration as composed (interpolations compared as
  written, so ``split_seed: ${seed}`` follows the seed) minus the seed and the keys that do not change results
  (:data:`IGNORED`: paths, loggers, progress bars, ...). Keys that differ between groups become columns.
* Only finished runs count: ``metrics.json`` with ``test/acc`` and no ``error.txt``. Failed and unfinished runs are
  listed below the table, never as rows.
* The mean is over seeds; ``n`` is the number of runs, and a std is shown only for ``n >= 2``.
* Runs of different groups that share seeds are also compared seed by seed (``per_seed.csv``): the paired
  difference to the best group of the dataset has a smaller spread than two independent means.

Writes ``leaderboard.csv``, ``leaderboard.md``, ``per_seed.csv`` and ``leaderboard.png`` (mean ± std per group, on
an axis scaled to the accuracies) and prints the table.
"""

import argparse
import fnmatch
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from omegaconf import OmegaConf

from zoo.run.sweeps import ERROR_FILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Keys (dotted, fnmatch patterns) that do not change a run's results: left out when grouping runs.
IGNORED: tuple[str, ...] = (
    "seed", "hydra.*", "paths.*", "logger", "logger.*", "run_name", "tags", "model_name", "data_name", "ckpt_path",
    "auto_resume", "optimized_metric", "data.data_dir", "data.download", "data.eval_batch_size", "data.num_workers",
    "trainer.default_root_dir", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps", "trainer.profiler", "trainer.plugins", "callbacks.model_summary*",
    "callbacks.progress_bar*", "callbacks.rich_progress_bar*", "callbacks.confusion_matrix*", "callbacks.nyc_outputs*",
    "callbacks.finite_loss*", "callbacks.divergence*", "callbacks.*.dirpath",
)
METRICS = {"test_acc": "test/acc", "params": "params", "fit_seconds": "fit_seconds", "epochs": "epochs"}


def _flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """``{dotted.key: value as text}`` for every leaf; lists are one value (``[256, 128]``)."""
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: json.dumps(node) if isinstance(node, list | dict) else str(node)}


def run_config(run_dir: Path) -> dict[str, str]:
    """The run's configuration as composed (``.hydra/config.yaml``, unresolved), minus :data:`IGNORED` keys."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    flat = _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    return {k: v for k, v in flat.items() if not any(fnmatch.fnmatchcase(k, p) for p in IGNORED)}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_run(run_dir: Path) -> dict | None:
    """One row per run directory: model, data, status, seed, final metrics and configuration (None: not a run)."""
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    if not hydra_file.is_file():
        return None
    choices = OmegaConf.load(hydra_file).hydra.runtime.choices
    row: dict[str, Any] = {"run": str(run_dir), "model": choices.get("model"), "data": choices.get("data"),
                           "config": run_config(run_dir), "reason": ""}
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if (run_dir / ERROR_FILE).is_file():
        text = (run_dir / ERROR_FILE).read_text()
        error = text.split("\nerror: ", 1)[1].split("\n\n", 1)[0] if "\nerror: " in text else ""
        row.update(status="failed", reason=" ".join(line.strip() for line in error.splitlines()))
    elif _finite(metrics.get("test/acc")):
        row["status"] = "done"
    else:
        row.update(status="unfinished", reason="no metrics.json" if not metrics else "metrics.json without test/acc")
    row["seed"] = metrics.get("seed")
    row.update({col: metrics.get(key) for col, key in METRICS.items()})
    return row


def collect(root: Path) -> pd.DataFrame:
    """Every run under ``root`` (a sweep folder, a folder of sweeps, or one run directory)."""
    dirs = sorted({p.parent.parent for p in Path(root).glob("**/.hydra/hydra.yaml")})
    rows = [row for d in dirs if (row := read_run(d)) is not None]
    if not rows:
        raise SystemExit(f"No run directories (with .hydra/hydra.yaml) under {root}: give a sweep or run folder.")
    runs = pd.DataFrame(rows)
    runs["group"] = [json.dumps([m, d, c], sort_keys=True) for m, d, c in zip(runs.model, runs.data, runs.config,
                                                                               strict=True)]
    return runs


def differing_keys(runs: pd.DataFrame) -> list[str]:
    """Config keys whose values differ between the groups of finished runs.

    ``model.*`` keys count only between groups of the same model and ``data.*`` keys only between groups of the same
    data (another model or dataset differs everywhere there; its name already says so); other keys (``trainer.*``, ...)
    count between any groups.
    """
    groups = runs.drop_duplicates("group")
    keys: set[str] = set()
    for section, choice in (("model", "model"), ("data", "data"), (None, None)):
        partitions = groups.groupby(choice) if choice else [(None, groups)]
        for _, part in partitions:
            configs = list(part.config)
            for key in set().union(*configs):
                in_section = key.split(".", 1)[0] == section if section else key.split(".", 1)[0] not in (
                    "model", "data")
                if in_section and len({c.get(key, "-") for c in configs}) > 1:
                    keys.add(key)
    return sorted(keys)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per group of finished runs (same model, data and configuration), best test accuracy first per data."""
    done = runs[runs.status == "done"]
    keys = differing_keys(done) if len(done) else []
    rows = []
    for group, part in done.groupby("group", sort=False):
        n = len(part)
        row = {"model": part.model.iloc[0], "data": part.data.iloc[0]}
        row.update({k: part.config.iloc[0].get(k, "-") for k in keys})
        failed = runs[(runs.group == group) & (runs.status == "failed")]
        row.update(runs=n, failed=len(failed), test_acc_mean=part.test_acc.mean(),
                   test_acc_std=part.test_acc.std() if n >= 2 else float("nan"),
                   params=part.params.iloc[0], fit_seconds=part.fit_seconds.mean(), epochs=part.epochs.mean(),
                   seeds=" ".join(f"{s:g}" for s in sorted(part.seed.dropna().unique())), group=group)
        rows.append(row)
    columns = ["model", "data", *keys, "runs", "failed", "test_acc_mean", "test_acc_std", "params", "fit_seconds",
               "epochs", "seeds", "group"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["data", "test_acc_mean", "model"], ascending=[True, False, True])
    table = table.reset_index(drop=True)
    table.attrs["keys"] = keys
    return table


def label(row: Any, keys: list[str]) -> str:
    """``mlp`` or ``mlp (trainer.max_epochs=5)``: the model and the keys that set the group apart."""
    values = ", ".join(f"{k}={row[k]}" for k in keys if row[k] != "-")
    return f"{row['model']} ({values})" if values else str(row["model"])


def per_seed(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per seed (rows) and group (columns) for each dataset, on the seeds that 2+ groups share.

    The last rows, ``Δ vs best (mean)`` and ``Δ vs best (std)``, are each group's paired difference to the best
    group of the dataset over their shared seeds.
    """
    done = runs[(runs.status == "done") & runs.seed.notna()]
    names = {r["group"]: label(r, table.attrs.get("keys", [])) for _, r in table.iterrows()}
    frames = []
    for data, part in done.groupby("data"):
        wide = part.pivot_table(index="seed", columns="group", values="test_acc", aggfunc="mean")
        wide = wide[[g for g in table.group[table.data == data] if g in wide.columns]]
        shared = wide[wide.notna().sum(axis=1) >= 2]
        if shared.empty or shared.shape[1] < 2:
            continue
        diff = shared.sub(shared.iloc[:, 0], axis=0)  # the first column is the dataset's best group
        extra = pd.DataFrame([diff.mean(), diff.std()], index=["Δ vs best (mean)", "Δ vs best (std)"])
        frame = pd.concat([shared.rename(index=lambda s: f"{s:g}"), extra]).rename(columns=names)
        frame.insert(0, "data", data)
        frames.append(frame.rename_axis("seed").reset_index())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def to_markdown(table: pd.DataFrame, runs: pd.DataFrame, seeds: pd.DataFrame) -> str:
    keys = table.attrs.get("keys", [])
    header = ["model", "data", *keys, "test acc", "n", "failed", "params", "fit time (s)", "epochs", "seeds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        acc = f"{r.test_acc_mean:.4f}" + (f" ± {r.test_acc_std:.4f}" if r.runs >= 2 else "")
        cells = [r.model, r.data, *(str(r[k]) for k in keys), acc, str(r.runs), str(r.failed), _fmt(r.params, ",.0f"),
                 _fmt(r.fit_seconds, ".1f"), _fmt(r.epochs, "g"), r.seeds]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("\nMean over seeds; ± is the sample std, shown for n >= 2 runs. Groups share their whole config except "
                 "the seed (columns: the keys that differ).")
    if len(seeds):
        lines += ["\n## Per seed (paired)\n", "| " + " | ".join(map(str, seeds.columns)) + " |",
                  "|" + "---|" * len(seeds.columns)]
        for _, r in seeds.iterrows():
            lines.append("| " + " | ".join(v if isinstance(v, str) else _fmt(v, ".4f") for v in r) + " |")
    left_out = runs[runs.status != "done"]
    if len(left_out):
        lines += [f"\n## Not counted ({len(left_out)})\n", "| run | status | reason |", "|---|---|---|"]
        lines += [f"| {r.run} | {r.status} | {r.reason} |" for r in left_out.itertuples()]
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, runs: pd.DataFrame, path: Path) -> "Figure":
    """Per dataset: each group's mean ± std (n >= 2) and its runs as dots, on an axis scaled to the accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(table.data))
    keys = table.attrs.get("keys", [])
    fig, axes = plt.subplots(len(datasets), 1, squeeze=False,
                             figsize=(8, 1.2 + 0.45 * len(table) + 0.6 * len(datasets)))
    for ax, data in zip(axes[:, 0], datasets, strict=True):
        part = table[table.data == data].iloc[::-1]  # best on top
        y = range(len(part))
        ax.errorbar(part.test_acc_mean, y, xerr=part.test_acc_std.fillna(0), fmt="o", capsize=4, color="C0",
                    label="mean ± std")
        for i, group in zip(y, part.group, strict=True):
            accs = runs.test_acc[(runs.group == group) & (runs.status == "done")]
            ax.plot(accs, [i] * len(accs), "|", color="C1", markersize=10)
        accs = runs.test_acc[(runs.data == data) & (runs.status == "done")]
        lo = min(min(part.test_acc_mean - part.test_acc_std.fillna(0)), accs.min())
        hi = max(max(part.test_acc_mean + part.test_acc_std.fillna(0)), accs.max())
        pad = max(0.1 * (hi - lo), 0.002)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_yticks(list(y), [label(r, keys) for _, r in part.iterrows()])
        ax.set(title=f"{data}: test accuracy (mean ± std over seeds; | = one run)", xlabel="test accuracy")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig


def compare(root: Path, out_dir: Path | None = None) -> pd.DataFrame:
    """Build the leaderboard of the runs under ``root`` and write it to ``out_dir`` (default: ``root``)."""
    runs = collect(root)
    table = leaderboard(runs)
    seeds = per_seed(runs, table)
    out = Path(out_dir or root)
    out.mkdir(parents=True, exist_ok=True)
    table.drop(columns="group").to_csv(out / "leaderboard.csv", index=False)
    seeds.to_csv(out / "per_seed.csv", index=False)
    markdown = to_markdown(table, runs, seeds)
    (out / "leaderboard.md").write_text(markdown)
    if len(table):
        plot(table, runs, out / "leaderboard.png")
    table.attrs["markdown"] = markdown
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.run.compare", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a sweep folder (logs/multiruns/<time>) or any folder of runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write leaderboard.* (default: dir)")
    args = parser.parse_args(argv)
    table = compare(args.dir, args.out)
    print(table.attrs["markdown"], end="")
    print(f"\nWritten: {(args.out or args.dir) / 'leaderboard.md'} (.csv, .png, per_seed.csv)")


if __name__ == "__main__":
    main()
