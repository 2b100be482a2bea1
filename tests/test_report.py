"""``python -m zoo.report``: runs grouped by effective config, named from their record, paired by split and node."""

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats as sp

from zoo.report import stats
from zoo.report.main import ReportCallback, main, report
from zoo.report.runs import collect, read_run

N_BOOT = 2000


def config(model: str, data: str, run: Path, **keys: object) -> dict:
    """A ``.hydra/config.yaml`` as train.py writes it (interpolations as written); ``keys``: dotted overrides."""
    cfg = {
        "seed": 1, "model_name": "${hydra:runtime.choices.model}", "data_name": "${hydra:runtime.choices.data}",
        "run_name": "${model_name}-${data_name}-${seed}", "tags": ["${model_name}"], "facts": "???",
        "train": True, "test": True, "ckpt_path": None, "auto_resume": False, "resume_accept": [], "threads": 1,
        "paths": {"output_dir": str(run), "log_dir": str(run.parent)},
        "trainer": {"max_epochs": 5, "accelerator": "cpu", "enable_progress_bar": True},
        "model": {"_target_": "zoo.tasks.classifier.Classifier",
                  "net": {"_target_": f"zoo.nets.{model}.Net", "in_features": "${facts.num_features}"},
                  "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01}},
        "data": {"_target_": f"datamodules.{data}.DataModule", "data_dir": "/data",
                 "split": {"_target_": "datamodules.splits.RandomSplit", "seed": "${seed}", "train_frac": 0.6,
                           "val_frac": 0.2, "label_rate": None, "labels_per_class": None}},
        "callbacks": {"model_checkpoint": {"monitor": "val/acc", "dirpath": f"{run}/checkpoints"},
                      "progress_bar": {"refresh_rate": 20}},
        "logger": {"csv": {"save_dir": str(run)}},
    }
    for key, value in keys.items():
        *parents, last = key.split(".")
        node = cfg
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return cfg


def kfold_split(fold: int, repeat: int = 0, folds: int = 3, **keys: object) -> dict[str, object]:
    """``data.split`` of ``data/split=kfold`` (configs/data/split/kfold.yaml), for ``fake_run(**{"data.split": ...})``."""
    return {"_target_": "datamodules.splits.KFoldSplit", "seed": "${seed}", "folds": folds, "fold": fold,
            "repeat": repeat, "label_rate": None, "labels_per_class": None, **keys}


def fake_run(root: Path, name: str, model: str = "logreg", data: str = "cora", *, acc: float | None = None,
             seed: int = 1, correct: np.ndarray | None = None, nodes: np.ndarray | None = None,
             overrides: list[str] | None = None, error: str | None = None, choices: dict | None = None,
             grid: dict | None = None, job: int | None = None, metrics: dict | None = None, **keys: object) -> Path:
    """A run directory in the real layout: ``.hydra/{config,hydra,overrides}.yaml``, then ``metrics.json`` (test/acc
    ``acc``, or the mean of ``correct``), ``predictions.csv`` (``correct`` per test node) or ``error.txt``."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    cfg = config(model, data, run, seed=seed, **keys)
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    hydra = {"hydra": {"run": {"dir": str(run)}, "mode": "MULTIRUN",
                       "runtime": {"output_dir": str(run), "choices": {"model": model, "data": data,
                                                                       "trainer": "default", "logger": "csv",
                                                                       **(choices or {})}}}}
    overrides = overrides or [f"model={model}", f"seed={seed}"]
    hydra["hydra"].update(overrides={"task": overrides}, job={"num": job}, sweeper={"grid": grid or {}})
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if error:
        (run / "error.txt").write_text(f"overrides: model={model}\nerror: {error}\n\nTraceback ...\n")
        return run
    if correct is not None:
        correct = np.asarray(correct, bool)
        ids = np.arange(len(correct)) if nodes is None else nodes
        pd.DataFrame({"node": ids, "split": "test", "label": 0, "prediction": np.where(correct, 0, 1),
                      "correct": correct}).to_csv(run / "predictions.csv", index=False)
        acc = float(correct.mean())
    if acc is not None:
        (run / "metrics.json").write_text(json.dumps({"test/acc": acc, "seed": seed, "params": 100, "epochs": 5,
                                                      "fit_seconds": 1.0, **(metrics or {})}))
    return run


def test_runs_differing_in_any_setting_are_never_averaged(tmp_path):
    """``-m model=logreg trainer.max_epochs=1,3 seed=1,2``: two groups, in the leaderboard and the paired table."""
    accs = {(1, 1): 0.84, (1, 2): 0.85, (3, 1): 0.89, (3, 2): 0.90}
    for i, ((epochs, seed), acc) in enumerate(accs.items()):
        fake_run(tmp_path, f"{i}_logreg-cora", acc=acc, seed=seed, **{"trainer.max_epochs": epochs})
    result = report(tmp_path, n_boot=N_BOOT)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(zip(board.label, board.runs, board.test_acc_mean.round(3), strict=True)) == [
        ("logreg (trainer.max_epochs=3)", 2, 0.895), ("logreg (trainer.max_epochs=1)", 2, 0.845)]
    wide = pd.read_csv(tmp_path / "paired_cora.csv", index_col="seed")
    assert list(wide.columns) == ["logreg (trainer.max_epochs=3)", "logreg (trainer.max_epochs=1)"]
    assert wide.loc[1].tolist() == [0.89, 0.84] and wide.loc[2].tolist() == [0.90, 0.85]
    assert "| logreg (trainer.max_epochs=1) | 2 | 0.845 ± 0.007 | -0.050 ± 0.000 | 0 / 0 / 2 |" in result.text


def test_seed_split_seed_fold_and_repeat_pair_runs_but_never_split_groups(tmp_path):
    """A k-fold sweep: every (fold, repeat) run of one model is one group; the models pair up fold by fold."""
    rng = np.random.default_rng(0)
    for model, skill in (("gcn", 0.9), ("mlp", 0.7)):
        for repeat in range(2):
            for fold in range(3):
                nodes = np.arange(fold * 10, fold * 10 + 10)  # every node tested once per repeat
                fake_run(tmp_path, f"{model}-{repeat}-{fold}", model, correct=rng.random(10) < skill, nodes=nodes,
                         **{"data.split": kfold_split(fold, repeat)})
    fake_run(tmp_path, "gcn-random", "gcn", acc=0.8)  # another split shape: its own table, never paired with kfold
    report(tmp_path, n_boot=N_BOOT)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(zip(board.model, board.runs, board["data.split._target_"], strict=True)) == [
        ("gcn", 1, "datamodules.splits.RandomSplit"), ("gcn", 6, "datamodules.splits.KFoldSplit"),
        ("mlp", 6, "datamodules.splits.KFoldSplit")]
    kfold = pd.read_csv(tmp_path / "paired_cora.csv", index_col=["seed", "fold", "repeat"])
    assert len(kfold) == 6 and list(kfold.columns) == ["gcn", "mlp"]
    pairs = pd.read_csv(tmp_path / "pairs_cora.csv")
    (row,) = pairs.itertuples()
    assert (row.a, row.b, row.splits, row.nodes, row.pairs, row.design) == ("gcn", "mlp", 2, 30, 60, "repeated")
    assert not (tmp_path / "pairs_cora_2.csv").exists()  # the random-split run has no partner
    text = (tmp_path / "paired.md").read_text()
    assert "## cora (data.split=KFoldSplit, data.split.folds=3): paired by split and node" in text
    assert ("## cora (data.split=RandomSplit, data.split.train_frac=0.6, data.split.val_frac=0.2): test accuracy, "
            "paired by seed") in text


def test_eval_runs_are_named_from_the_checkpoint_they_tested(tmp_path, caplog):
    """eval.py leaves the default model (mlp) in its own .hydra/; the checkpoint's record says logreg."""
    trained = fake_run(tmp_path / "runs", "logreg-cora", "logreg", acc=0.8, seed=3)
    (trained / "checkpoints").mkdir()
    ckpt = trained / "checkpoints" / "epoch_004.ckpt"
    saved = yaml.safe_load((trained / ".hydra" / "config.yaml").read_text())
    saved.update(model_name="logreg", data_name="cora", seed=3)
    torch.save({"state_dict": {}, "callbacks": {"zoo.RunRecord": {"config": yaml.safe_dump(saved)}}}, ckpt)

    evals = tmp_path / "evals"
    for name in ("with-record", "file-gone", "unknown"):
        target = {"unknown": tmp_path / "elsewhere" / "x.ckpt", "file-gone": trained / "checkpoints" / "gone.ckpt"}
        fake_run(evals, name, "mlp", acc=0.8, seed=12345, train=False, ckpt_path=str(target.get(name, ckpt)))
    records = {r.path.name: r for r in collect(evals)}
    assert (records["with-record"].model, records["with-record"].kind) == ("logreg", "eval")
    assert records["file-gone"].model == "logreg"  # from the training run's own .hydra/
    # eval.py keeps its own seed (12345), but tests on the training run's split: that pairs it.
    assert records["with-record"].split == records["file-gone"].split == {"seed": 3, "split_seed": 3, "fold": None,
                                                                           "repeat": None}
    assert records["unknown"].status == "skipped" and "cannot be told" in records["unknown"].reason
    assert [r.message for r in caplog.records if r.levelno == logging.WARNING] == [
        f"Skipped {evals / 'unknown'}: {records['unknown'].reason}."]

    # The record alone, when the training run's folder is gone (a copied checkpoint):
    shutil.rmtree(trained / ".hydra")
    assert read_run(evals / "with-record").model == "logreg"
    text = report(evals, n_boot=N_BOOT).text
    assert "| logreg (eval) | cora |" in text and "| mlp" not in text


def test_a_resumed_run_with_an_accepted_change_is_grouped_by_what_ran(tmp_path):
    """Trained at lr 0.01, resumed with an accepted lr 1e-05: neither a 0.01 run nor a fresh 1e-05 run of the same
    seed (never a "duplicate" of it); its own group, labelled with its history."""
    plain = fake_run(tmp_path, "plain", acc=0.8, seed=2)
    fresh = fake_run(tmp_path, "fresh", acc=0.7, seed=2, **{"model.optimizer.lr": 1e-5})
    resumed = fake_run(tmp_path, "resumed", acc=0.75, seed=2)
    record = resumed / ".hydra" / "resumed_2026-01-01_00-00-00"
    record.mkdir()
    cfg = config("logreg", "cora", resumed, seed=2, **{"model.optimizer.lr": 1e-5,
                                                       "resume_accept": ["model.optimizer.lr"]})
    (record / "config.yaml").write_text(yaml.safe_dump(cfg))
    (record / "hydra.yaml").write_text((resumed / ".hydra" / "hydra.yaml").read_text())
    assert read_run(resumed).config["model.optimizer.lr"] == "0.01 -> 1e-05 (resumed)"
    assert read_run(plain).config["model.optimizer.lr"] == "0.01"
    assert read_run(fresh).config["model.optimizer.lr"] == "1e-05"
    text = report(tmp_path, n_boot=N_BOOT).text
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board["model.optimizer.lr"].tolist() == ["0.01", "0.01 -> 1e-05 (resumed)", "1e-05"]
    assert board.runs.tolist() == [1, 1, 1] and "duplicate" not in text
    assert "| logreg (model.optimizer.lr=0.01 -> 1e-05 (resumed)) | cora | 0.7500 |" in text


def test_a_run_that_continued_another_runs_checkpoint_with_an_accepted_change_is_grouped_by_what_ran(tmp_path):
    """``ckpt_path=<plain>/checkpoints/last.ckpt resume_accept=[model.optimizer.lr]`` in a folder of its own: its
    ``.hydra/`` says 1e-05 only, yet its first epochs ran at the checkpoint's 0.01. Not a fresh 1e-05 run."""
    plain = fake_run(tmp_path, "plain", acc=0.8, seed=2)
    (plain / "checkpoints").mkdir()
    (plain / "checkpoints" / "last.ckpt").write_bytes(b"")  # no record in it: the run's own .hydra/ tells
    fresh = fake_run(tmp_path, "fresh", acc=0.7, seed=2, **{"model.optimizer.lr": 1e-5})
    continued = fake_run(tmp_path, "continued", acc=0.75, seed=2, **{
        "model.optimizer.lr": 1e-5, "resume_accept": ["model.optimizer.lr"],
        "ckpt_path": str(plain / "checkpoints" / "last.ckpt")})
    assert read_run(continued).config["model.optimizer.lr"] == "0.01 -> 1e-05 (resumed)"
    assert read_run(fresh).config["model.optimizer.lr"] == "1e-05"
    shutil.rmtree(plain)  # its source gone: the run is still read, by its own record
    assert read_run(continued).config["model.optimizer.lr"] == "1e-05"


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda run: (run / "metrics.json").write_text('{"test/acc": 0.9, "se'), "metrics.json is not valid JSON"),
    (lambda run: (run / ".hydra" / "hydra.yaml").write_text(""), "hydra.yaml records no config choices"),
    (lambda run: (run / ".hydra" / "config.yaml").write_text("model: [unclosed\n"), ".hydra/config.yaml cannot be read"),
    (lambda run: (run / ".hydra" / "config.yaml").write_bytes(b"\xff\xfe\x00garbage"), "config.yaml"),
    (lambda run: (run / ".hydra" / "config.yaml").unlink(), "config.yaml is missing"),
])
def test_a_damaged_run_is_skipped_with_one_warning_line(tmp_path, caplog, capsys, damage, reason):
    for seed in (1, 2):
        fake_run(tmp_path, f"good-{seed}", acc=0.8, seed=seed)
    bad = fake_run(tmp_path, "bad", acc=0.7, seed=3)
    damage(bad)
    main([str(tmp_path), "--n-boot", str(N_BOOT)])
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    message = warnings[0].getMessage()
    assert message.startswith(f"Skipped {bad}: ") and reason in message and "\n" not in message
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert board.runs.tolist() == [2]
    assert any("bad" in line and "skipped" in line for line in (tmp_path / "leaderboard.md").read_text().splitlines())
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("case", ["empty", "all failed", "all damaged", "no test"])
def test_nothing_comparable_exits_2_and_writes_no_table(tmp_path, capsys, case):
    if case == "all failed":
        for seed in (1, 2):
            fake_run(tmp_path, f"failed-{seed}", seed=seed, error="ConfigError: model.optimizer.lr=-1: must be > 0")
    elif case == "all damaged":
        fake_run(tmp_path, "cut", acc=0.8)
        (tmp_path / "cut" / "metrics.json").write_text("{")
    elif case == "no test":
        fake_run(tmp_path, "nan", acc=math.nan)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    expected = {"empty": "No run directories", "all failed": "none of its 2 runs finished with a test accuracy "
                "(2 failed; first failure: ConfigError: model.optimizer.lr=-1: must be > 0)",
                "all damaged": "(1 skipped)", "no test": "(1 unfinished)"}[case]
    assert expected in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.md")) and not list(tmp_path.glob("*.csv"))


def test_nan_and_infinity_in_metrics(tmp_path):
    run = fake_run(tmp_path, "nan", seed=1)
    (run / "metrics.json").write_text('{"test/acc": NaN, "val/acc": -Infinity, "seed": 1}')
    ok = fake_run(tmp_path, "ok", acc=0.8, seed=2)
    (ok / "metrics.json").write_text('{"test/acc": 0.8, "val/acc": -Infinity, "fit_seconds": NaN, "seed": 2}')
    text = report(tmp_path, n_boot=N_BOOT).text
    assert "| logreg | cora | 0.8000 | 1 | 0 | - | - | - | 2 |" in text
    assert any("nan" in line and "test/acc is nan" in line for line in text.splitlines())


def _outcomes(only_a: int, only_b: int, both: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.repeat([True, False, True, False], [only_a, only_b, both, neither])
    b = np.repeat([False, True, True, False], [only_a, only_b, both, neither])
    return a, b


def test_per_node_statistics_agree_with_scipy(tmp_path):
    a, b = _outcomes(30, 12, 150, 8)
    order = np.random.default_rng(0).permutation(len(a))
    fake_run(tmp_path, "gcn", "gcn", correct=a[order], seed=1)
    fake_run(tmp_path, "mlp", "mlp", correct=b[order], seed=1)
    report(tmp_path, n_boot=20_000)
    (row,) = pd.read_csv(tmp_path / "pairs_cora.csv").itertuples()
    assert (row.a, row.b, row.pairs, row.wins, row.ties, row.losses) == ("gcn", "mlp", 200, 30, 158, 12)
    assert row.difference == pytest.approx(18 / 200)
    assert row.design == "single" and row.test == "exact McNemar"
    assert row.p == pytest.approx(sp.binomtest(12, 42, 0.5).pvalue, rel=1e-9)
    assert row.p_holm == row.p  # one comparison in the table
    d = a.astype(float) - b
    ci = sp.bootstrap((d,), np.mean, n_resamples=20_000, method="BCa", random_state=1).confidence_interval
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=0.006)
    assert row.resolution == pytest.approx((row.ci_high - row.ci_low) / 2)
    assert row.verdict == "gcn better"


def test_seed_level_ci_is_scipys_t_interval():
    diffs = np.array([0.01, 0.03, -0.01, 0.02, 0.04, 0.00, 0.05, 0.02])
    low, high, p = stats.mean_ci(diffs)
    theirs = sp.ttest_1samp(diffs, 0.0)
    assert (low, high, p) == pytest.approx((*theirs.confidence_interval(0.95), theirs.pvalue))
    with pytest.raises(ValueError, match="finite"):
        stats.mean_ci([0.1, math.nan])


def test_close_models_are_called_not_separable_next_to_the_number(tmp_path):
    rng = np.random.default_rng(1)
    for seed in range(6):
        truth = rng.random(80) < 0.8
        close = truth.copy()  # differs on 2 nodes out of 80: one it gets right, one it gets wrong
        close[rng.choice(np.flatnonzero(truth))] = False
        close[rng.choice(np.flatnonzero(~truth))] = True
        fake_run(tmp_path, f"gcn-{seed}", "gcn", correct=truth, seed=seed)
        fake_run(tmp_path, f"gat-{seed}", "gat", correct=close, seed=seed)
        fake_run(tmp_path, f"mlp-{seed}", "mlp", correct=truth & (rng.random(80) < 0.6), seed=seed)
    text = report(tmp_path, n_boot=N_BOOT).text
    pairs = pd.read_csv(tmp_path / "pairs_cora.csv").set_index(["a", "b"])
    close_pair = pairs.loc[[i for i in pairs.index if set(i) == {"gcn", "gat"}][0]]
    assert close_pair.ci_low <= 0 <= close_pair.ci_high and close_pair.verdict == stats.NOT_SEPARABLE
    assert close_pair.splits == 6 and close_pair.design == "repeated"
    (line,) = [x for x in text.splitlines() if x.startswith("| g") and "mlp" not in x and "× 80" in x]
    cells = [c.strip() for c in line.split("|")]
    ci_cell = next(i for i, c in enumerate(cells) if c.startswith(("+", "-")) and "[" in c)
    assert cells[ci_cell + 3] == "not separable at this sample size"  # after p and p (Holm)
    assert "gcn better" in pairs.loc[("gcn", "mlp")].verdict
    assert "Resolution: each row's CI half-width" in text and "Resolution: one accuracy per run" in text
    assert "Holm's correction over this table's 3 comparisons" in text
    assert "repeated: 95% CI by BCa bootstrap over nodes, each with the mean of its repeats" in text


def test_few_seeds_give_no_seed_level_verdict(tmp_path):
    for seed in range(3):  # mlp loses every seed, by a lot, but 3 seeds cannot say more
        fake_run(tmp_path, f"gcn-{seed}", "gcn", acc=0.9 + seed / 100, seed=seed)
        fake_run(tmp_path, f"mlp-{seed}", "mlp", acc=0.7 + seed / 100, seed=seed)
    text = report(tmp_path, n_boot=N_BOOT).text
    assert "[-0.200, -0.200] not separable at this sample size (3 paired seeds; a verdict needs 5)" in text
    assert "No per-node comparison" in text


def test_duplicates_are_listed_not_counted(tmp_path):
    fake_run(tmp_path, "a", acc=0.8, seed=1)
    fake_run(tmp_path, "b", acc=0.9, seed=1)  # the same config and seed again
    board = report(tmp_path, n_boot=N_BOOT).text
    assert "| logreg | cora | 0.8000 | 1 |" in board
    assert any("| duplicate | same config and split as" in line for line in board.splitlines())


def test_the_command_and_the_hydra_callback_write_the_same_report(tmp_path, capsys, monkeypatch):
    """main() (zoo-compare), ``python -m zoo.report`` and the sweep's Hydra callback write one report."""
    import runpy
    import sys

    for seed in (1, 2):
        fake_run(tmp_path / "sweep", f"gcn-{seed}", "gcn", acc=0.8 + seed / 100, seed=seed)
        fake_run(tmp_path / "sweep", f"mlp-{seed}", "mlp", acc=0.7, seed=seed)
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "a"), "--n-boot", "200"])
    monkeypatch.setattr(sys, "argv", ["zoo.report", str(tmp_path / "sweep"), "--out", str(tmp_path / "b"), "--n-boot",
                                      "200"])
    runpy.run_module("zoo.report", run_name="__main__")  # python -m zoo.report
    for name in ("leaderboard.md", "paired.md", "paired_cora.csv", "per_seed.csv"):
        texts = [(tmp_path / d / name).read_text().replace(str(tmp_path / d), "") for d in "ab"]
        assert texts[0] == texts[1], name
    assert "paired" in capsys.readouterr().out

    target = yaml.safe_load((Path(__file__).parents[1] / "configs/compare/nyc.yaml").read_text())
    callback_target = target["hydra"]["callbacks"]["paired_report"]["_target_"]
    assert callback_target == "zoo.report.main.ReportCallback"
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    callback = instantiate({"_target_": callback_target, "n_boot": 200})
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}},
                                              "logger": {"csv": {}}}))
    assert (tmp_path / "sweep" / "paired.md").read_text() == (tmp_path / "a" / "paired.md").read_text().replace(
        str(tmp_path / "a"), str(tmp_path / "sweep"))
    assert not (tmp_path / "sweep" / "wandb").exists()  # logger=csv: nothing to W&B


def test_the_callback_logs_one_error_line_when_nothing_ran(tmp_path, caplog):
    fake_run(tmp_path, "failed", error="DivergedError: the loss went up")
    ReportCallback().on_multirun_end(_hydra_cfg(tmp_path))
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "No comparison written: Nothing to compare" in record.getMessage() and "diverged" not in record.getMessage()
    assert not (tmp_path / "paired.md").exists()


def _hydra_cfg(sweep: Path, logger: dict | None = None):
    from omegaconf import OmegaConf

    return OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "logger": logger or {"csv": {}}})


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """No credentials, no network, nothing written outside tmp_path (as tests/test_wandb.py)."""
    wandb = pytest.importorskip("wandb")
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for key in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(key, str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    yield wandb
    wandb.finish()


def test_runs_logged_to_wandb_get_their_report_there_offline(wandb_env, tmp_path):
    sweep = tmp_path / "sweep"
    logger = {"wandb": {"_target_": "zoo.loggers.wandb_logger", "mode": None,
                        "project": "${oc.env:WANDB_PROJECT,zoo}", "name": "${run_name}"}}
    for seed in range(2):
        for model, skill in (("gcn", 0.9), ("mlp", 0.6)):
            correct = np.random.default_rng(seed).random(40) < skill
            fake_run(sweep, f"{model}-{seed}", model, correct=correct, seed=seed, logger=logger)
    main([str(sweep), "--n-boot", "200"])  # the runs logged to W&B: so does their report
    runs_before = set((sweep / "wandb").glob("offline-run-*"))
    # The Hydra callback of `python train.py compare=nyc logger=wandb`: the sweep's logger says W&B.
    ReportCallback(n_boot=200).on_multirun_end(_hydra_cfg(sweep, {"wandb": {"project": "zoo", "mode": None}}))
    wandb_env.teardown()  # W&B's service writes the last records on shutdown
    (run_dir,) = runs_before
    assert len(set((sweep / "wandb").glob("offline-run-*")) - runs_before) == 1
    media = run_dir / "files" / "media"
    tables = {p.relative_to(media / "table").as_posix().rsplit("_", 2)[0] for p in media.glob("table/**/*.table.json")}
    assert tables == {"leaderboard", "cora/per_seed", "cora/paired_by_seed", "cora/paired_by_node"}
    by_node = json.loads(next(media.glob("table/cora/paired_by_node*.table.json")).read_text())
    assert "verdict" in by_node["columns"] and by_node["data"][0][by_node["columns"].index("a")] == "gcn"
    images = {p.relative_to(media / "images").as_posix().rsplit("_", 2)[0] for p in media.glob("images/**/*.png")}
    assert images == {"leaderboard_plot", "cora/paired_plot"}
    records = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert b"report" in records  # job type


@pytest.mark.parametrize("jobs", [
    {"gcn": ["model=gcn", "data=cora"], "mlp": ["model=mlp", "data=cora"]},
    {"prior": ["experiment=prior_nyc_zip"], "logreg": ["model=logreg", "data=nyc_zip"]},  # NYCOutputs, NodePredictions
], ids=["cora", "nyc"])
def test_real_graph_runs_write_predictions_that_pair_up(make_cfg, tmp_path, jobs):
    """Tiny real runs: predictions.csv (NodePredictions, or NYCOutputs for the NYC experiments) agrees with
    test/acc, and runs of two models pair node by node."""
    from omegaconf import OmegaConf

    from zoo.run.runner import train

    sweep = tmp_path / "sweep"
    accs = {}
    for model, overrides in jobs.items():
        for seed in (0, 1):
            out = sweep / f"{model}-{seed}"
            cfg = make_cfg(*overrides, f"seed={seed}", "data.download=false", "logger=none", "trainer.max_epochs=2",
                           "callbacks.progress_bar.refresh_rate=0", "trainer.enable_model_summary=false",
                           output_dir=out)  # configs/callbacks/default.yaml writes predictions.csv
            (out / ".hydra").mkdir(parents=True)  # what Hydra writes before the job
            OmegaConf.save({"hydra": {"runtime": {"choices": dict(cfg.hydra.runtime.choices)}}},
                           out / ".hydra" / "hydra.yaml")
            OmegaConf.save(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), out / ".hydra" / "config.yaml")
            accs[model, seed] = train(cfg)[0]["test/acc"]
            written = pd.read_csv(out / "predictions.csv")
            node = "zip" if any(o.startswith("experiment=") for o in overrides) else "node"  # NYCOutputs' own file
            assert node in written.columns
            assert written[written.split == "test"].correct.mean() == pytest.approx(accs[model, seed], abs=1e-6)
    report(sweep, n_boot=N_BOOT)
    data = "cora" if "data=cora" in next(iter(jobs.values())) else "nyc_zip"
    (row,) = pd.read_csv(sweep / f"pairs_{data}.csv").itertuples()
    assert {row.a, row.b} == set(jobs) and row.splits == 2 and row.splits_left_out == 0
    assert row.acc_a == pytest.approx(np.mean([accs[row.a, s] for s in (0, 1)]), abs=1e-6)


def test_predictions_that_disagree_with_the_run_are_not_paired(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for seed in (1, 2):
        fake_run(tmp_path, f"gcn-{seed}", "gcn", correct=rng.random(50) < 0.8, seed=seed)
        fake_run(tmp_path, f"mlp-{seed}", "mlp", correct=rng.random(50) < 0.6, seed=seed)
    stale = tmp_path / "mlp-2" / "metrics.json"  # predictions.csv of another test than metrics.json's
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "test/acc": 0.5}))
    other_nodes = pd.read_csv(tmp_path / "gcn-1" / "predictions.csv").assign(node=lambda t: t.node + 100)
    other_nodes.to_csv(tmp_path / "gcn-1" / "predictions.csv", index=False)  # not the nodes mlp-1 was tested on
    report(tmp_path, n_boot=N_BOOT)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and warnings[0].startswith(f"Not used: {tmp_path / 'mlp-2' / 'predictions.csv'} gives "
                                                         f"test accuracy 0.")
    assert warnings[1] == "gcn vs mlp: 1 split(s) left out, their test nodes or labels differ."
    assert not (tmp_path / "pairs_cora.csv").exists()  # seed 1: other nodes; seed 2: mlp's file not used
    assert "No per-node comparison" in (tmp_path / "paired.md").read_text()


def test_pairs_leave_out_splits_whose_test_nodes_differ(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for seed in (1, 2):
        fake_run(tmp_path, f"gcn-{seed}", "gcn", correct=rng.random(50) < 0.8, seed=seed)
        shift = 100 if seed == 1 else 0  # seed 1: another node set
        fake_run(tmp_path, f"mlp-{seed}", "mlp", correct=rng.random(50) < 0.6, seed=seed,
                 nodes=np.arange(50) + shift)
    report(tmp_path, n_boot=N_BOOT)
    (row,) = pd.read_csv(tmp_path / "pairs_cora.csv").itertuples()
    assert (row.splits, row.pairs, row.splits_left_out) == (1, 50, 1)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "gcn vs mlp: 1 split(s) left out, their test nodes or labels differ."]


def test_a_verdict_needs_the_holm_p_and_the_ci():
    assert stats.verdict((0.01, 0.05), 0.01, "gcn", "mlp") == "gcn better"
    assert stats.verdict((0.01, 0.05), 0.07, "gcn", "mlp") == stats.NOT_SEPARABLE  # Holm: not below 0.05
    assert stats.verdict((-0.01, 0.05), 0.001, "gcn", "mlp") == stats.NOT_SEPARABLE  # the CI contains 0
    assert stats.verdict((-0.05, -0.01), 0.001, "gcn", "mlp") == "mlp better"


def test_label_rates_get_tables_of_their_own_and_many_models_are_paired_with_the_best(tmp_path, monkeypatch):
    from zoo.report import tables

    rng = np.random.default_rng(0)
    for model, skill in (("gcn", 0.9), ("gat", 0.8), ("mlp", 0.6)):
        for rate in (0.05, 0.6):
            fake_run(tmp_path, f"{model}-{rate}", model, correct=rng.random(40) < skill - 0.5 * (rate < 0.1),
                     **{"data.split.label_rate": rate})
    monkeypatch.setattr(tables, "ALL_PAIRS_UP_TO", 2)
    report(tmp_path, n_boot=200)
    text = (tmp_path / "paired.md").read_text()
    assert "## cora (data.split.label_rate=0.05): paired by split and node" in text
    assert "## cora (data.split.label_rate=0.6): paired by split and node" in text
    pairs = pd.read_csv(tmp_path / "pairs_cora.csv")  # one table per rate: never a 0.05 run against a 0.6 one
    assert len(pairs) == 2 and pairs.a.nunique() == 1 and set(pairs.b) | set(pairs.a) == {"gcn", "gat", "mlp"}
    assert "3 models: each is compared with the best one only." in text


def test_evaluations_by_run_dir_best_or_last_join_their_training_run(tmp_path):
    """eval.py keeps ckpt_path as given (a run directory, best or last, which name the directory it was started
    in: hydra.runtime.cwd); each is reported as its training run's eval, labelled with resolved values only."""
    trained = fake_run(tmp_path / "runs", "logreg-cora", "logreg", acc=0.8, seed=3,
                       **{"model._target_": "${facts.task}"})
    (trained / "checkpoints").mkdir()
    saved = yaml.safe_load((trained / ".hydra" / "config.yaml").read_text())
    saved.update(model_name="logreg", data_name="cora", seed=3, facts={"task": "zoo.tasks.classifier.Classifier"})
    saved["model"]["_target_"] = "zoo.tasks.classifier.Classifier"  # a record is resolved
    for name in ("epoch_004.ckpt", "last.ckpt"):
        torch.save({"state_dict": {}, "callbacks": {"zoo.RunRecord": {"config": yaml.safe_dump(saved)}}},
                   trained / "checkpoints" / name)
    evals = tmp_path / "evals"
    started = {"dir": (str(trained), tmp_path), "relative": ("runs/logreg-cora", tmp_path), "best": ("best", trained),
               "last": ("last", trained)}
    for name, (ckpt, cwd) in started.items():
        run = fake_run(evals, name, "mlp", acc=0.8, seed=12345, train=False, ckpt_path=ckpt)
        hydra = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())
        hydra["hydra"]["runtime"]["cwd"] = str(cwd)
        (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    records = {r.path.name: r for r in collect(tmp_path)}
    assert {n: (records[n].status, records[n].model, records[n].kind) for n in started} == {
        n: ("done", "logreg", "eval") for n in started}
    assert {records[n].split["seed"] for n in started} == {3}  # the training run's split
    assert all(records[n].config == records["logreg-cora"].config for n in started)
    assert "model._target_" not in records["logreg-cora"].config  # follows from the data's facts
    text = report(tmp_path, n_boot=N_BOOT).text
    assert "| logreg (eval) | cora | 0.8000 | 1 |" in text and "| logreg | cora | 0.8000 | 1 |" in text
    assert "${" not in text and "cannot be told" not in text
    assert ("Evaluation (cora): logreg (eval) tested the checkpoints of logreg (same effective config and splits): "
            "0.8000 against 0.8000 when trained.") in text
    assert pd.read_csv(tmp_path / "leaderboard.csv").set_index("label").evaluates.fillna("").to_dict() == {
        "logreg": "", "logreg (eval)": "logreg"}

    shutil.rmtree(trained / ".hydra")  # the checkpoint's record alone (resolved values): the same group
    alone = read_run(evals / "dir")
    assert (alone.model, alone.config) == ("logreg", records["dir"].config)


def test_a_split_without_predictions_is_named_and_the_verdict_says_what_it_rests_on(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for seed in range(6):
        fake_run(tmp_path, f"gcn-{seed}", "gcn", correct=rng.random(60) < 0.95, seed=seed)
        fake_run(tmp_path, f"mlp-{seed}", "mlp", correct=rng.random(60) < 0.4, seed=seed)
    (tmp_path / "mlp-2" / "predictions.csv").unlink()
    report(tmp_path, n_boot=N_BOOT)
    (row,) = pd.read_csv(tmp_path / "pairs_cora.csv").itertuples()
    assert (row.splits, row.splits_shared, row.splits_used, row.splits_missing) == (5, 6, 5, "seed=2")
    assert row.verdict == "gcn better (rests on 5 of 6 shared splits; left out: seed=2)"
    text = (tmp_path / "paired.md").read_text()
    assert "splits without predictions.csv" in text and "| seed=2 |" in text
    assert "gcn vs mlp: 1 split(s) without predictions.csv left out (seed=2)." in [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_random_splits_are_read_as_crossed_and_holm_adjusts_each_table(tmp_path):
    """Each seed tests another subset of the nodes: the crossed splits x nodes method, stated in the table."""
    rng = np.random.default_rng(4)
    for seed in range(5):
        nodes = np.sort(rng.choice(120, 80, replace=False))
        for model, skill in (("gcn", 0.85), ("gat", 0.84), ("mlp", 0.6)):
            fake_run(tmp_path, f"{model}-{seed}", model, correct=rng.random(80) < skill, nodes=nodes, seed=seed)
    text = report(tmp_path, n_boot=N_BOOT).text
    pairs = pd.read_csv(tmp_path / "pairs_cora.csv")
    assert set(pairs.design) == {"crossed"} and len(pairs) == 3
    assert pairs.p_holm.tolist() == pytest.approx(stats.holm(pairs.p.to_numpy()).tolist())
    assert (pairs.p_holm >= pairs.p).all()
    assert ("crossed: 95% CI by t interval, crossed splits x nodes method-of-moments variance (Satterthwaite df), "
            "p by t test, crossed splits x nodes variance") in text
    for r in pairs.itertuples():
        separable = r.p_holm < 0.05 and not r.ci_low <= 0 <= r.ci_high
        assert r.verdict.startswith(stats.NOT_SEPARABLE) != separable


def test_a_report_is_never_written_into_a_run(tmp_path):
    """``python -m zoo.report <one run dir>``: refused (exit 2), nothing written into the run; --out elsewhere works."""
    run = fake_run(tmp_path, "0_logreg-cora", acc=0.8)
    files = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(SystemExit) as refused:
        main([str(run), "--n-boot", "200"])
    assert refused.value.code == 2 and sorted(p.relative_to(run) for p in run.rglob("*")) == files
    main([str(run), "--out", str(tmp_path / "report"), "--n-boot", "200"])
    assert (tmp_path / "report" / "leaderboard.md").is_file()
