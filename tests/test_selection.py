"""Nested selection and label-rate curves: a settings grid per model (``hydra/sweeper=grid``), one grid point kept
per model and split on validation alone, and each model's accuracy against the label rate (``compare=nyc``,
``compare=nyc_label_rates``, ``compare=cora_label_rates``)."""

import logging

import numpy as np
import pandas as pd
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from scipy import stats as sp

from tests.runs import output, run_train
from tests.test_report import N_BOOT, fake_run, kfold_split
from zoo.report import stats
from zoo.report.main import report

WD = "model.optimizer.weight_decay"
GRID = {"model=logreg": {WD: "0.0,0.1"}}


def GridSweeper(**kwargs):  # noqa: N802 - the class, as Hydra's plugin scan last loaded it
    """Hydra's plugin scan re-executes the sweeper modules (BasicSweeper's included): a class imported before a
    later scan would call a BasicSweeper.__init__ that no longer knows it. So: scan, then take the class."""
    import importlib

    from hydra.core.plugins import Plugins

    Plugins.instance()
    return importlib.import_module("hydra_plugins.zoo_hydra.grid").GridSweeper(**kwargs)


def _jobs(sweeper, *overrides: str, batch: int | None = None) -> list[list[list[str]]]:
    return sweeper.split_arguments(OverridesParser.create().parse_overrides(list(overrides)), batch)


def test_grid_sweeper_adds_each_models_grid_to_its_own_jobs():
    sweeper = GridSweeper(grid={"experiment=b": {"model.lr": "0.1,0.01"},
                                "experiment=c": {"model.wd": "0", "model.k": "range(3,5)"}})
    (jobs,) = _jobs(sweeper, "experiment=a,b,c", "seed=0,1")
    assert jobs == [
        ["experiment=a", "seed=0"], ["experiment=a", "seed=1"],
        ["experiment=b", "seed=0", "model.lr=0.1"], ["experiment=b", "seed=0", "model.lr=0.01"],
        ["experiment=b", "seed=1", "model.lr=0.1"], ["experiment=b", "seed=1", "model.lr=0.01"],
        ["experiment=c", "seed=0", "model.wd=0", "model.k=3"], ["experiment=c", "seed=0", "model.wd=0", "model.k=4"],
        ["experiment=c", "seed=1", "model.wd=0", "model.k=3"], ["experiment=c", "seed=1", "model.wd=0", "model.k=4"]]
    assert [len(b) for b in _jobs(sweeper, "experiment=a,b,c", "seed=0,1", batch=4)] == [4, 4, 2]


def test_grid_sweeper_refuses_what_it_cannot_do_and_names_an_unused_grid(caplog):
    with pytest.raises(HydraException, match="must be an override"):
        GridSweeper(grid={"experiment": {"model.lr": "0.1"}})
    with pytest.raises(HydraException, match="sweeps seed, which the sweep already sets"):
        _jobs(GridSweeper(grid={"experiment=b": {"seed": "3,4"}}), "experiment=b", "seed=0")
    with caplog.at_level(logging.WARNING):
        (jobs,) = _jobs(GridSweeper(grid={"experiment=typo": {"model.lr": "0.1,0.2"}}), "experiment=a,b")
    assert jobs == [["experiment=a"], ["experiment=b"]] and "experiment=typo" in caplog.text


def _grid_run(root, name: str, wd: float, job: int, fold: int, correct: np.ndarray, **metrics: float):
    return fake_run(root, name, "logreg", correct=correct, nodes=np.arange(fold * 20, fold * 20 + 20),
                    overrides=["model=logreg", f"data.split.fold={fold}", f"{WD}={wd}"], grid=GRID, job=job,
                    metrics=metrics, **{WD: wd, "data.split": kfold_split(fold)})


def test_each_split_keeps_the_grid_point_best_on_validation_never_on_test(tmp_path):
    good, bad = np.arange(20) < 18, np.arange(20) < 10  # test accuracy 0.9 and 0.5
    # fold 0: the better test score has the worse validation score: validation decides.
    _grid_run(tmp_path, "a0", 0.0, job=0, fold=0, correct=good, **{"val/acc_best": 0.80})
    _grid_run(tmp_path, "a1", 0.1, job=1, fold=0, correct=bad, **{"val/acc_best": 0.90})
    # fold 1: a tie on validation: the first listed (job number, not folder order).
    _grid_run(tmp_path, "z2", 0.0, job=2, fold=1, correct=bad, **{"val/acc_best": 0.85})
    _grid_run(tmp_path, "b3", 0.1, job=3, fold=1, correct=good, **{"val/acc_best": 0.85})
    # fold 2: no validation score: never chosen over one that has it.
    _grid_run(tmp_path, "c4", 0.0, job=4, fold=2, correct=good)
    _grid_run(tmp_path, "c5", 0.1, job=5, fold=2, correct=bad, **{"val/acc_best": 0.5})
    for fold in range(3):  # a model without a grid, on the same splits
        fake_run(tmp_path, f"mlp{fold}", "mlp", correct=np.arange(20) < 15, nodes=np.arange(fold * 20, fold * 20 + 20),
                 **{"data.split": kfold_split(fold)})
    report(tmp_path, n_boot=N_BOOT)
    selection = pd.read_csv(tmp_path / "selection.csv")
    assert [(r.run.split("/")[-1], r[WD], r.candidates) for _, r in selection.iterrows()] == [
        ("a1", 0.1, 2), ("z2", 0.0, 2), ("c5", 0.1, 2)]
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    logreg = board[board.model == "logreg"].iloc[0]
    assert logreg.label == "logreg" and logreg.runs == 3 and logreg.test_acc_mean == pytest.approx(0.5)
    assert set(board.label) == {"logreg", "mlp"}  # one group per model: the grid's key is not a group key
    text = (tmp_path / "leaderboard.md").read_text()
    assert "3 other grid runs are not counted" in text and "not chosen |" not in text
    pairs = pd.read_csv(tmp_path / "pairs_cora.csv")
    assert pairs.loc[0, "pairs"] == 60 and {pairs.loc[0, "a"], pairs.loc[0, "b"]} == {"logreg", "mlp"}
    assert ("| logreg | cora | 3 | 2 | model.optimizer.weight_decay=0.1 (2×), model.optimizer.weight_decay=0.0 (1×) |"
            in (tmp_path / "paired.md").read_text())


@pytest.mark.parametrize(("monitor", "mode", "scores", "chosen"), [
    ("val/loss", "min", [{"val/loss_tested": 0.5}, {"val/loss_tested": 0.3}], "g1"),  # GAT: the lower loss
    ("val/acc", "max", [{"val/acc_tested": 0.7, "val/acc_best": 0.9}, {"val/acc_tested": 0.8}], "g1"),
    (None, "max", [{"val/acc": 0.6, "val/acc_best": 0.9}, {"val/acc": 0.7, "val/acc_best": 0.7}], "g1"),  # final
])
def test_the_score_is_that_of_the_weights_tested(tmp_path, monitor, mode, scores, chosen):
    for i, (wd, metrics) in enumerate(zip((0.0, 0.1), scores, strict=True)):
        fake_run(tmp_path, f"g{i}", "logreg", acc=0.5 + i / 10, overrides=["model=logreg", f"{WD}={wd}"], grid=GRID,
                 job=i, metrics=metrics, **{WD: wd, "callbacks.model_checkpoint.monitor": monitor,
                                            "callbacks.model_checkpoint.mode": mode})
    report(tmp_path, n_boot=N_BOOT)
    assert pd.read_csv(tmp_path / "selection.csv").run.str.endswith(chosen).all()


def test_label_rate_curves_join_the_rates_of_each_model(tmp_path):
    rng = np.random.default_rng(0)
    skill = {("gcn", 0.1): 0.8, ("gcn", 0.6): 0.9, ("mlp", 0.1): 0.5, ("mlp", 0.6): 0.85}
    for (model, rate), p in skill.items():
        for repeat in range(2):
            for fold in range(3):
                fake_run(tmp_path, f"{model}-{rate}-{repeat}-{fold}", model, correct=rng.random(30) < p,
                         nodes=np.arange(fold * 30, fold * 30 + 30),
                         **{"data.split": kfold_split(fold, repeat, label_rate=rate)})
    result = report(tmp_path, n_boot=N_BOOT)
    curves = pd.read_csv(tmp_path / "label_rates.csv")
    assert sorted(zip(curves.model, curves.rate, curves.runs, curves.tests, strict=True)) == [
        ("gcn", 0.1, 6, 180), ("gcn", 0.6, 6, 180), ("mlp", 0.1, 6, 180), ("mlp", 0.6, 6, 180)]
    assert ((curves.ci_low < curves.acc) & (curves.acc < curves.ci_high)).all()
    gcn_low = curves[(curves.model == "gcn") & (curves.rate == 0.1)].iloc[0]
    mlp_low = curves[(curves.model == "mlp") & (curves.rate == 0.1)].iloc[0]
    assert gcn_low.ci_low > mlp_low.ci_high  # 0.8 against 0.5 on 180 tests: apart
    assert "| gcn | 0." in (tmp_path / "label_rates.md").read_text() and "label_rate=0.1" in result.text
    assert (tmp_path / "label_rates.png").stat().st_size > 10_000
    pairs = pd.read_csv(tmp_path / "label_rate_pairs.csv")
    assert sorted(zip(pairs.rate, pairs.a, pairs.b, strict=True)) == [(0.1, "gcn", "mlp"), (0.6, "gcn", "mlp")]
    low = pairs[pairs.rate == 0.1].iloc[0]
    row = next(line for line in (tmp_path / "label_rates.md").read_text().splitlines() if line.startswith("| mlp | -"))
    assert row.split(" | ")[1].startswith(f"{-low.difference:+.3f} [") and "n.s." not in row.split(" | ")[1]
    assert (tmp_path / "pairs_cora.csv").is_file() and (tmp_path / "pairs_cora_2.csv").is_file()  # one per rate


def test_accuracy_ci_of_one_split_is_scipys_bca_bootstrap_over_nodes():
    correct = np.random.default_rng(1).random(400) < 0.7
    ours = stats.accuracy_ci(correct, n_boot=20_000)
    ref = sp.bootstrap((correct.astype(float),), np.mean, method="BCa", n_resamples=20_000,
                       random_state=0).confidence_interval
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=0.006)
    assert (ours.design, ours.estimate) == ("single", correct.mean())


def test_compare_nyc_runs_each_models_grid_and_reports_the_choice(data_dir, tmp_path):
    """`python train.py compare=nyc_label_rates`, narrowed: the prior (no grid) and logreg (2 weight decays) on two
    folds at two label rates; the report keeps one logreg run per split and rate and draws the curves."""
    log_dir = tmp_path / "logs"
    proc = run_train("compare=nyc_label_rates", "experiment=prior_nyc_zip,logreg_nyc_zip", "data.split.repeat=0",
                     "data.split.fold=0,1", "data.split.label_rate=0.2,0.6", "trainer.max_epochs=2",
                     "data.download=false",
                     "callbacks.progress_bar.refresh_rate=0", "hydra.sweep.dir=" + str(tmp_path / "sweep"),
                     data_dir=data_dir, log_dir=log_dir)
    assert proc.returncode == 0, output(proc)
    sweep = tmp_path / "sweep"
    assert len([p for p in sweep.iterdir() if (p / "metrics.json").is_file()]) == 2 * 2 * (1 + 2)
    selection = pd.read_csv(sweep / "selection.csv")
    assert len(selection) == 4 and set(selection.model) == {"logreg"} and (selection.candidates == 2).all()
    curves = pd.read_csv(sweep / "label_rates.csv")
    assert sorted(zip(curves.model, curves.rate, curves.runs, strict=True)) == [
        ("logreg", 0.2, 2), ("logreg", 0.6, 2), ("prior", 0.2, 2), ("prior", 0.6, 2)]
    assert "Settings chosen on validation" in (sweep / "paired.md").read_text()


def test_selection_records_the_label_rate_of_each_choice(tmp_path):
    """A grid at two label rates: selection.csv says at which rate each choice was made."""
    for rate in (0.1, 0.6):
        for job, wd in enumerate((0.0, 0.1)):
            fake_run(tmp_path, f"g{rate}-{wd}", "logreg", acc=0.5, overrides=["model=logreg", f"{WD}={wd}"],
                     grid=GRID, job=job, metrics={"val/acc_best": 0.5 + wd * (1 if rate < 0.5 else -1)},
                     **{WD: wd, "data.split.label_rate": rate})
    report(tmp_path, n_boot=N_BOOT)
    selection = pd.read_csv(tmp_path / "selection.csv")
    assert sorted(zip(selection["data.split.label_rate"], selection[WD], strict=True)) == [(0.1, 0.1), (0.6, 0.0)]
    assert "| logreg | cora | 0.1 | 1 | 2 | model.optimizer.weight_decay=0.1 (1×) |" in (
        tmp_path / "paired.md").read_text()
