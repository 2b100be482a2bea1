"""The run plan (zoo/run/plan.py): decided once, the checkpoint read once, accepted changes honoured or refused, and
one table of keys that never change a result (zoo/keys.py) for resume, sweeps and the report."""

import os
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_cfg
from tests.test_run_safety import RUN, _crashed
from zoo.errors import ConfigError
from zoo.keys import neutral
from zoo.run.runner import train


def test_a_resume_reads_its_checkpoint_once_besides_lightning(tmp_path, data_dir, monkeypatch):
    run_dir = _crashed(tmp_path / "run", data_dir)
    last = str(run_dir / "checkpoints" / "last.ckpt")
    reads = []
    real = torch.load

    def counting(f, *args, **kwargs):
        name = getattr(f, "name", getattr(f, "path", f))  # a path, or the file object Lightning opens
        if isinstance(name, str | Path) and os.fspath(name) == last:
            reads.append(name)
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, objects = train(compose_cfg([*RUN, "ckpt_path=last"], run_dir, data_dir))
        assert not [f for f in warnings.filters if f[1] and "is not empty" in f[1].pattern]  # not past the run
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]  # its own checkpoints folder
    assert objects["plan"].kind == "resume" and objects["plan"].resume_epoch == 1
    assert len(reads) == 2, reads  # the plan's read, and Lightning's restore


def test_the_config_is_read_only_once_the_run_is_planned(tmp_path, data_dir):
    from omegaconf import open_dict
    from omegaconf.errors import ReadonlyConfigError

    _, objects = train(compose_cfg([*RUN, "trainer.max_epochs=1"], tmp_path / "run", data_dir))
    cfg = objects["cfg"]
    assert cfg.facts.num_classes == 10  # filled from the data before it was frozen
    with pytest.raises(ReadonlyConfigError):
        cfg.model.optimizer.lr = 1.0  # what ran is what the config says, to the end of the run
    with pytest.raises(ReadonlyConfigError), open_dict(cfg):
        cfg.trainer.new_key = 1  # not even where the config is open to new keys


@pytest.mark.parametrize(("overrides", "refused"), [
    (["data.val_size=200", "resume_accept=[data]"], r"resume_accept cannot take data.val_size on a resume.*eval.py"),
    (["data=fashion_mnist", "resume_accept=[data]"], r"resume_accept cannot take data"),
    (["model/scheduler=onecycle", "resume_accept=[model.scheduler,model.scheduler_interval]"], r"scheduler .*keeps its saved schedule"),
])
def test_accepted_changes_a_resume_cannot_honour_are_refused(tmp_path, data_dir, overrides, refused):
    run_dir = _crashed(tmp_path / "run", data_dir)
    with pytest.raises(ConfigError, match=refused):
        train(compose_cfg([*RUN, "ckpt_path=last", *overrides], run_dir, data_dir))
    assert not (run_dir / "metrics.json").exists()


def test_an_lr_change_under_a_scheduler_is_refused_without_one_accepted(tmp_path, data_dir):
    run = [*RUN, "model/scheduler=cosine"]
    run_dir = tmp_path / "run"
    with pytest.raises(Exception, match="crash"):
        train(compose_cfg([*run, "+callbacks.crash._target_=tests.faults.CrashAt", "+callbacks.crash.epoch=2"],
                          run_dir, data_dir))
    with pytest.raises(ConfigError, match=r"model.optimizer.lr on a resume: the learning-rate scheduler"):
        train(compose_cfg([*run, "ckpt_path=last", "model.optimizer.lr=0.5", "resume_accept=[model.optimizer.lr]"],
                          run_dir, data_dir))
    metrics, objects = train(compose_cfg([*RUN, "ckpt_path=last", "model.optimizer.lr=0.5",
                                          "resume_accept=[model.optimizer.lr]"], _crashed(tmp_path / "plain", data_dir),
                                         data_dir))
    assert objects["trainer"].optimizers[0].param_groups[0]["lr"] == 0.5  # no scheduler: applied
    # Extending the cosine run: its T_max follows trainer.max_epochs, which the restored schedule keeps. The refusal
    # never advises a resume_accept that would be refused in turn.
    with pytest.raises(ConfigError, match=r"model.scheduler.T_max cannot change on a resume") as refused:
        train(compose_cfg([*run, "ckpt_path=last", "trainer.max_epochs=5"], run_dir, data_dir))
    assert "resume_accept=[" not in str(refused.value)
    with pytest.raises(ConfigError, match=r"model.scheduler.T_max cannot change on a resume"):  # accepted: still not
        train(compose_cfg([*run, "ckpt_path=last", "trainer.max_epochs=5", "resume_accept=[trainer.max_epochs]"],
                          run_dir, data_dir))


def test_a_batch_size_change_is_taken_on_a_resume_when_accepted(tmp_path, data_dir):
    run_dir = _crashed(tmp_path / "run", data_dir)
    with pytest.raises(ConfigError, match=r"data.batch_size: 128 -> 32.*resume_accept=\[data.batch_size\]"):
        train(compose_cfg([*RUN, "ckpt_path=last", "data.batch_size=32"], run_dir, data_dir))
    _, objects = train(compose_cfg([*RUN, "ckpt_path=last", "data.batch_size=32", "resume_accept=[data.batch_size]"],
                                   run_dir, data_dir))
    assert objects["cfg"].data.batch_size == 32 and objects["datamodule"].train_dataloader().batch_size == 32


@pytest.mark.parametrize("which", ["best", "last", "run dir"])
def test_eval_finds_the_best_or_last_checkpoint_of_a_run(tmp_path, data_dir, monkeypatch, which):
    run_dir = tmp_path / "run"
    trained, _ = train(compose_cfg(RUN, run_dir, data_dir))
    (best,) = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    monkeypatch.chdir(run_dir if which != "run dir" else tmp_path)
    ckpt = {"best": "best", "last": "last", "run dir": str(run_dir)}[which]
    metrics, objects = train(compose_cfg(["train=false", f"ckpt_path={ckpt}", "trainer.accelerator=cpu",
                                          "data.download=false"], tmp_path / "eval", data_dir))
    expected = run_dir / "checkpoints" / ("last.ckpt" if which == "last" else best.name)
    assert objects["plan"].kind == "eval" and objects["plan"].ckpt_path == str(expected)
    if which != "last":
        assert metrics["test/acc"] == trained["test/acc"]


def test_best_outside_a_run_directory_says_where_to_run_it(tmp_path, data_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="is not a run directory"):
        train(compose_cfg(["train=false", "ckpt_path=best", "data.download=false"], tmp_path / "eval", data_dir))


@pytest.mark.parametrize(("key", "expected"), [
    ("paths.output_dir", True), ("callbacks.progress_bar.refresh_rate", True), ("callbacks.crash.epoch", True),
    ("callbacks.model_checkpoint.dirpath", True), ("logger.wandb.project", True), ("threads", True),
    ("callbacks.model_checkpoint.monitor", False), ("callbacks.early_stopping.patience", False),
    ("model.optimizer.lr", False), ("data.split.val_frac", False), ("trainer.max_epochs", False), ("seed", False),
    ("logger", True), ("callbacks", False), ("callbacks.model_checkpoint", False),  # callbacks=early_stopping
])
def test_one_table_says_which_keys_never_change_a_result(key, expected):
    assert neutral(key) is expected


def test_a_refused_run_leaves_a_folder_marked_failed_that_a_rerun_finishes(tmp_path, data_dir):
    from tests.runs import TINY, output, run_train
    from zoo.report.runs import read_run

    run_dir = tmp_path / "run"
    refused = run_train("model=logreg", "data=mnist", *TINY, "model.optimizer.lr=-1", f"hydra.run.dir={run_dir}",
                        data_dir=data_dir, log_dir=tmp_path / "logs")
    assert refused.returncode == 2, output(refused)
    assert "refused before training" in (run_dir / "error.txt").read_text()
    assert read_run(run_dir).status == "failed"  # the report lists it as failed, never as a result
    again = run_train("model=logreg", "data=mnist", *TINY, f"hydra.run.dir={run_dir}", data_dir=data_dir,
                      log_dir=tmp_path / "logs")
    assert again.returncode == 0, output(again)
    assert not (run_dir / "error.txt").exists() and len(list(run_dir.glob("error_*.txt"))) == 1
    assert read_run(run_dir).status == "done"
    fresh = run_train("model=logreg", "data=mnist", *TINY, "model.optimizer.lr=-1", data_dir=data_dir,
                      log_dir=tmp_path / "fresh_logs")  # no hydra.run.dir: the folder it made for the run goes
    assert fresh.returncode == 2 and "model.optimizer.lr" in output(fresh), output(fresh)
    assert not (tmp_path / "fresh_logs").exists()


def test_a_refused_evaluation_leaves_nothing_behind(tmp_path, data_dir):
    import subprocess
    import sys

    from tests.runs import ROOT, output

    no_checkpoints = tmp_path / "run"
    no_checkpoints.mkdir()
    for ckpt, message in [(tmp_path / "missing.ckpt", "does not exist"),
                          (no_checkpoints, f"no checkpoints in {no_checkpoints / 'checkpoints'}")]:
        for where in ([f"hydra.run.dir={tmp_path / 'eval'}"], []):  # a folder given, or logs/evals/<time>
            proc = subprocess.run([sys.executable, str(ROOT / "eval.py"), f"ckpt_path={ckpt}",
                                   f"paths.data_dir={data_dir}", *where], capture_output=True, text=True,
                                  cwd=tmp_path, timeout=300)
            assert proc.returncode == 2, output(proc)
            assert message in output(proc)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], output(proc)  # no eval/, no logs/
