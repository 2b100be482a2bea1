"""``python -m zoo.report``: a leaderboard of like runs from run directories alone."""

import json
import math
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import yaml

from zoo.report.main import main
from zoo.report.plots import leaderboard_plot
from zoo.report.runs import collect
from zoo.report.tables import frame, leaderboard

BASE = {"seed": 1, "model_name": "${hydra:runtime.choices.model}", "paths": {"output_dir": "/somewhere"},
        "trainer": {"max_epochs": 5, "enable_progress_bar": True}, "data": {"batch_size": 128, "split_seed": "${seed}"},
        "logger": {"csv": {"save_dir": "/x"}}}


def fake_run(sweep: Path, name: str, model: str, data: str, metrics: dict | None = None, error: bool = False,
             **config: object) -> Path:
    """A run directory as train.py leaves it: .hydra/{hydra,config}.yaml, then metrics.json or error.txt.

    ``config`` overrides dotted keys of the run's config, e.g. ``**{"trainer.max_epochs": 200}``.
    """
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    hydra = {"hydra": {"runtime": {"choices": {"model": model, "data": data, "trainer": "default"}}}}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    cfg = json.loads(json.dumps(BASE))
    cfg["model"] = {"net": {"_target_": f"zoo.nets.{model}", "hidden": 64}, "optimizer": {"lr": 0.001}}
    cfg["paths"]["output_dir"] = str(run)  # differs for every run: must not split groups
    cfg["seed"] = (metrics or {}).get("seed", 0)
    for key, value in config.items():
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[last] = value
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    if error:
        (run / "error.txt").write_text("overrides: model=cnn\nerror: ConfigError: model.optimizer.lr=-1: must be > 0\n")
    return run


def _metrics(acc: float, seed: int, epochs: float = 5.0) -> dict:
    return {"test/acc": acc, "params": 1000.0, "fit_seconds": 10.0, "epochs": epochs, "seed": seed}


@pytest.fixture
def sweep(tmp_path) -> Path:
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    for seed, acc in ((1, 0.90), (2, 0.92), (3, 0.94)):
        fake_run(sweep, f"mlp5-{seed}", "mlp", "mnist", _metrics(acc, seed))
    for seed, acc in ((1, 0.95), (2, 0.96)):  # the same model trained 40x longer: its own group
        fake_run(sweep, f"mlp200-{seed}", "mlp", "mnist", _metrics(acc, seed, 200.0), **{"trainer.max_epochs": 200})
    fake_run(sweep, "logreg-1", "logreg", "mnist", _metrics(0.91, 1))  # one seed: no std
    fake_run(sweep, "cnn-refused", "cnn", "mnist", error=True, **{"model.optimizer.lr": -1})
    fake_run(sweep, "cnn-running", "cnn", "mnist")  # still running, or killed
    fake_run(sweep, "cnn-no-test", "cnn", "mnist", {"val/acc_best": 0.9, "seed": 1})  # test=false: nothing to rank
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


def test_only_like_finished_runs_are_averaged(sweep, capsys):
    main([str(sweep.parent), "--n-boot", "200"])  # a folder of sweeps works too
    table = pd.read_csv(sweep.parent / "leaderboard.csv")
    # Grouped by the whole config minus seed and paths: max_epochs splits the MLP runs, and is shown.
    assert list(table.columns[:4]) == ["model", "data", "kind", "trainer.max_epochs"]
    assert list(zip(table.model, table["trainer.max_epochs"], table.runs, strict=True)) == [
        ("mlp", 200, 2), ("mlp", 5, 3), ("logreg", 5, 1)]  # refused/unfinished runs are no rows
    assert list(table.label) == ["mlp (trainer.max_epochs=200)", "mlp (trainer.max_epochs=5)", "logreg"]
    mlp5 = table.iloc[1]
    assert mlp5.test_acc_mean == pytest.approx(0.92) and mlp5.test_acc_std == pytest.approx(0.02)  # sample std
    assert mlp5.epochs == 5 and mlp5.seeds == "1 2 3" and mlp5.kind == "train"
    assert math.isnan(table.iloc[2].test_acc_std)  # n = 1: no spread to show

    markdown = (sweep.parent / "leaderboard.md").read_text()
    assert "| mlp (trainer.max_epochs=5) | mnist | 0.9200 ± 0.0200 | 3 | 0 |" in markdown
    assert "| logreg | mnist | 0.9100 | 1 | 0 |" in markdown and "± 0.0000" not in markdown
    for run, reason in (("cnn-refused", "ConfigError: model.optimizer.lr=-1"), ("cnn-running", "no metrics.json"),
                        ("cnn-no-test", "without test/acc")):
        assert any(run in line and reason in line for line in markdown.splitlines()), run
    assert markdown in capsys.readouterr().out


def test_per_seed_table_pairs_groups_on_shared_seeds(sweep):
    main([str(sweep), "--n-boot", "200"])
    seeds = pd.read_csv(sweep / "per_seed.csv").set_index("seed")
    best, mlp5 = "mlp (trainer.max_epochs=200)", "mlp (trainer.max_epochs=5)"
    assert list(seeds.index) == [1, 2, 3] and list(seeds.columns) == ["data", best, mlp5, "logreg"]
    assert seeds.loc[1, best] == pytest.approx(0.95) and seeds.loc[2, mlp5] == pytest.approx(0.92)
    assert math.isnan(seeds.loc[3, best])  # not run on seed 3
    paired = (sweep / "paired.md").read_text()
    # Paired over seeds 1 and 2 only: -0.045 ± 0.007 (the unpaired means differ by 0.035).
    assert f"| {mlp5} | 3 | 0.920 ± 0.020 | -0.045 ± 0.007 | 0 / 0 / 2 |" in paired


def test_plot_axis_is_scaled_to_the_data(sweep):
    runs = frame(collect(sweep))
    fig = leaderboard_plot(leaderboard(runs), runs, sweep / "plot.png")
    (ax,) = fig.axes
    lo, hi = ax.get_xlim()
    assert 0.85 < lo < 0.90 and 0.96 < hi < 1.0  # not from 0: a one-point difference stays visible
    assert matplotlib.image.imread(sweep / "plot.png").shape[0] > 100


def test_no_runs_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2 and "No run directories" in capsys.readouterr().err


def test_paired_reference_ran_enough_seeds(tmp_path):
    """A group run on one seed, best by its mean, is compared with the best group that ran enough seeds for a
    verdict, not made everyone's reference."""
    sweep = tmp_path / "sweep"
    fake_run(sweep, "cnn-0", "cnn", "mnist", _metrics(0.99, 0))
    for seed in range(5):
        fake_run(sweep, f"mlp-{seed}", "mlp", "mnist", _metrics(0.95 + 0.001 * seed, seed))
        fake_run(sweep, f"logreg-{seed}", "logreg", "mnist", _metrics(0.90 + 0.002 * seed, seed))
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    main([str(sweep), "--n-boot", "200"])
    paired = (sweep / "paired.md").read_text()
    assert "paired diff. to mlp (mean ± std)" in paired
    assert "| cnn | 1 | 0.990 ± 0.000 | +0.040 ± 0.000 | 1 / 0 / 0 |" in paired
    assert "| logreg | 5 | 0.904 ± 0.003 | -0.048 ± 0.002 | 0 / 0 / 5 | [-0.050, -0.046] mlp better" in paired
