"""Trustworthy runs: never exit 0 without a result, never lose or rewrite a run's files, never hang.

One parametrised test per class of fault: signals in every stage, resumes that keep the whole history, copied
or moved run directories, changed settings on resume and eval, finished runs re-run, failed sweep jobs, two
runs in one run directory, and the thread count that reproducibility depends on.
"""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import compose_cfg
from tests.faults import Crash
from tests.runs import ROOT, TINY, output, run_train, wait_for_marker
from zoo.callbacks.run_record import RunRecord
from zoo.errors import ConfigError
from zoo.registry import compose
from zoo.report.runs import collect
from zoo.run import rundir
from zoo.run.runner import train

# Three short epochs of logistic regression on CPU, logged to CSV.
RUN = ["model=logreg", "data=mnist", "seed=0", "trainer.accelerator=cpu", "trainer.max_epochs=3",
       "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
       "data.val_size=100", "data.download=false", "logger=csv", "trainer.enable_model_summary=false",
       "callbacks.progress_bar.refresh_rate=0"]


def _crash_at(epoch: int) -> list[str]:
    """Overrides that stop a run at the start of ``epoch`` (-1: at the start of testing)."""
    return ["+callbacks.crash._target_=tests.faults.CrashAt", f"+callbacks.crash.epoch={epoch}"]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _metrics(run_dir: Path) -> dict[str, float]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("fit_seconds")
    return metrics


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "csv" / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def _crashed(run_dir: Path, data_dir: Path, epoch: int = 2) -> Path:
    """A run stopped at the start of ``epoch`` (its last.ckpt holds the epoch before)."""
    with pytest.raises(Crash):
        train(compose_cfg([*RUN, *_crash_at(epoch)], run_dir, data_dir))
    assert not (run_dir / "metrics.json").exists()
    return run_dir


def _start(script: str, run_dir: Path, data_dir: Path, *overrides: str, env: dict | None = None) -> subprocess.Popen:
    run = [o for o in RUN if "~SEED" not in overrides or not o.startswith("seed=")]  # ~SEED: leave the seed out
    command = [sys.executable, str(ROOT / script), *run, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}",
               *(o for o in overrides if o != "~SEED")]
    # SIGINT as a terminal delivers it: a shell starts background jobs (`cmd &`, as some CI runners do) with SIGINT
    # ignored, which the child would inherit, and Python then installs no handler for it.
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir) -> Path:
    """The uninterrupted run that every resumed one must match."""
    run_dir = tmp_path_factory.mktemp("reference")
    train(compose_cfg(RUN, run_dir, data_dir))
    return run_dir


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir) -> Path:
    """A finished run made by ``train.py`` itself (with its .hydra/ and log file)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    proc = _start("train.py", run_dir, data_dir)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    return run_dir


# ------------------------------------------------------------------ 1. a signal in any stage, never exit 0
# Lightning finishes a stage that the signal reaches at its last batch (the result is then complete): pause at
# the first of two validation/test batches.
TWO_EVAL_BATCHES = ["data.eval_batch_size=50", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
STAGES = {  # name: (script, signal, pause settings)
    "SIGTERM-sanity-check": ("train.py", signal.SIGTERM, ["stage=sanity", "batch=0"]),
    "SIGTERM-validation": ("train.py", signal.SIGTERM, ["stage=validate", "epoch=1", "batch=0"]),
    "SIGTERM-test": ("train.py", signal.SIGTERM, ["stage=test", "batch=0"]),
    # Lightning finishes a stage whose last batch the signal reaches: the run must still not exit 0.
    "SIGTERM-last-test-batch": ("train.py", signal.SIGTERM, ["stage=test", "batch=1"]),
    "SIGTERM-eval.py": ("eval.py", signal.SIGTERM, ["stage=test", "batch=0"]),
    "SIGINT-fit": ("train.py", signal.SIGINT, ["stage=train", "epoch=1", "batch=0"]),
    "SIGINT-test": ("train.py", signal.SIGINT, ["stage=test", "batch=0"]),
}


@pytest.mark.parametrize("case", STAGES)
def test_signal_in_any_stage_exits_non_zero_without_metrics(tmp_path, data_dir, finished, case):
    script, sig, where = STAGES[case]
    marker = tmp_path / "paused"
    pause = [*TWO_EVAL_BATCHES, "+callbacks.pause._target_=tests.faults.PauseMidEpoch", f"+callbacks.pause.marker={marker}",
             *(f"+callbacks.pause.{w}" for w in where)]
    if script == "eval.py":
        pause.append(f"ckpt_path={finished / 'checkpoints' / 'last.ckpt'}")
    run_dir = tmp_path / "run"
    proc = _start(script, run_dir, data_dir, *pause)
    wait_for_marker(marker, proc)
    proc.send_signal(sig)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + sig, out[-3000:]
    assert f"Stopped by {'SIGTERM' if sig == signal.SIGTERM else 'Ctrl-C (SIGINT)'}" in out
    # At the last test batch Lightning finishes the test: the complete result is kept, and the run still stops.
    assert (run_dir / "metrics.json").exists() == (case == "SIGTERM-last-test-batch")


# ------------------------------------------------------------------ 2. a resumed run keeps its whole history
@pytest.mark.parametrize("stopped", ["in-epoch-2", "in-test"])
@pytest.mark.parametrize("switch", ["ckpt_path=last", "auto_resume=true"])
def test_resumed_run_keeps_its_whole_history(tmp_path, data_dir, reference, stopped, switch):
    run_dir = _crashed(tmp_path, data_dir, epoch=2 if stopped == "in-epoch-2" else -1)
    before = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"][RunRecord.KEY]
    rows_before = _rows(run_dir)

    metrics, _ = train(compose_cfg([*RUN, switch], run_dir, data_dir))
    assert _metrics(run_dir) == _metrics(reference)  # val/acc_best, train/*, val/*, test/* all there
    assert _rows(run_dir) == _rows(reference)  # every epoch once, the earlier ones kept
    assert [{k: row[k] for k in rows_before[0]} for row in _rows(run_dir)[:len(rows_before)]] == rows_before
    assert metrics["fit_seconds"] >= before["fit_seconds"] > 0  # the first session's time counts


# ------------------------------------------------------------------ 3. a copied or moved run dir resumes in place
@pytest.mark.parametrize("how", ["copied", "moved"])
def test_copied_or_moved_run_resumes_in_its_new_place(tmp_path, data_dir, reference, how):
    original = _crashed(tmp_path / "original", data_dir)
    new = tmp_path / "new"
    (shutil.copytree if how == "copied" else shutil.move)(original, new)

    _, objects = train(compose_cfg([*RUN, "ckpt_path=last"], new, data_dir))
    assert sorted(p.name for p in (new / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert torch.load(new / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2  # the final epoch
    best = next(c.best_model_path for c in objects["callbacks"] if getattr(c, "monitor", None) == "val/acc")
    assert Path(best).parent == new / "checkpoints"  # tested from the new place
    assert _metrics(new) == _metrics(reference)


# ------------------------------------------------------------------ 4. changed settings on resume and eval
SETTINGS = r" .* -> .*resume_accept=\["  # "<key>: <saved> -> <new> ... resume_accept=[...]"
CHANGES = {  # name: (mode, overrides, the refusal (a regex), or None when accepted)
    "resume-new-lr": ("resume", ["model.optimizer.lr=0.5"], r"model.optimizer.lr: 0.1 -> 0.5.*resume_accept=\["),
    "resume-other-data": ("resume", ["data=fashion_mnist"], "data._target_:" + SETTINGS),
    "resume-fewer-epochs": ("resume", ["trainer.max_epochs=2"], "trainer.max_epochs: 3 -> 2"),
    "resume-new-lr-accepted": ("resume", ["model.optimizer.lr=0.5", "resume_accept=[model.optimizer.lr]"], None),
    "eval-other-data": ("eval", ["data=fashion_mnist"], "data._target_:" + SETTINGS),
    "eval-other-model": ("eval", ["model=mlp"], r"is a checkpoint of model=logreg .* this run builds model=mlp"),
    "eval-takes-the-run's-settings": ("eval", [], None),  # the defaults (model=mlp) are not the run's (logreg)
    "eval-other-seed": ("eval", ["seed=3"], r"seed=3: .* was trained with seed=0, which drew its data split"),
    "resume-other-seed": ("resume", ["seed=3", "resume_accept=[seed]"], r"seed=3: .* was trained with seed=0"),
}


@pytest.mark.parametrize("case", CHANGES)
def test_changed_settings_are_refused_unless_accepted(tmp_path, data_dir, reference, case):
    mode, overrides, refused = CHANGES[case]
    if mode == "resume":
        run_dir, base = _crashed(tmp_path / "run", data_dir), [*RUN, "ckpt_path=last"]
    else:
        run_dir, base = tmp_path / "eval", ["train=false", f"ckpt_path={reference / 'checkpoints' / 'epoch_000.ckpt'}",
                                            "trainer.accelerator=cpu", "data.val_size=100", "data.download=false"]
    cfg = compose_cfg([*base, *overrides], run_dir, data_dir)
    if refused:
        with pytest.raises(ConfigError, match=refused):
            train(cfg)
        assert not (run_dir / "metrics.json").exists()
        return
    metrics, objects = train(cfg)
    if mode == "resume":  # the new lr is used, not the checkpoint's, and recorded
        assert objects["trainer"].optimizers[0].param_groups[0]["lr"] == 0.5
        record = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"][RunRecord.KEY]
        assert [(c["key"], c["from"], c["to"]) for c in record["changes"]] == [("model.optimizer.lr", 0.1, 0.5)]
    else:  # nothing on the command line: the run's model on the run's data, the run's test numbers
        assert (objects["cfg"].model_name, objects["cfg"].data_name) == ("logreg", "mnist")
        assert metrics["seed"] == 0  # what was tested: the run's seed and split, not the command's default seed
        tested = {k: v for k, v in _metrics(reference).items() if k.startswith("test/")}
        assert {k: metrics[k] for k in tested} == tested


def test_a_run_that_continues_a_checkpoint_in_a_folder_of_its_own_says_what_it_runs(tmp_path, data_dir):
    """Its folder's record (``.hydra/``) is its command, so a saved setting the command leaves out is refused, with
    the override that gives it (in its own folder, a resume takes the saved settings: the run's record says them)."""
    first = tmp_path / "first"
    train(compose_cfg([*RUN, "model.optimizer.lr=0.05", "trainer.max_epochs=1"], first, data_dir))
    before = _snapshot(first)
    more = [*RUN, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", "resume_accept=[trainer.max_epochs]"]
    with pytest.raises(ConfigError, match=r"model.optimizer.lr: 0.05 -> 0.1.*Give the saved values "
                                          r"\(model.optimizer.lr=0.05\): this run's own folder records its command"):
        train(compose_cfg(more, tmp_path / "more", data_dir))
    metrics, objects = train(compose_cfg([*more, "model.optimizer.lr=0.05"], tmp_path / "more", data_dir))
    assert objects["trainer"].optimizers[0].param_groups[0]["lr"] == 0.05 and metrics["epochs"] == 3
    tested = next(c.best_model_path for c in objects["callbacks"] if getattr(c, "monitor", None) == "val/acc")
    assert Path(tested).parent == tmp_path / "more" / "checkpoints" and _snapshot(first) == before


def test_eval_reads_the_run_of_another_dataset(tmp_path, data_dir):
    """eval.py ckpt_path=<fashion run> model=logreg: the data comes from the run, not from the defaults."""
    run_dir = tmp_path / "fashion"
    train(compose_cfg([*RUN, "data=fashion_mnist"], run_dir, data_dir))
    (best,) = (run_dir / "checkpoints").glob("epoch_*.ckpt")
    metrics, objects = train(compose_cfg(["train=false", f"ckpt_path={best}", "model=logreg",
                                          "trainer.accelerator=cpu", "data.download=false"], tmp_path / "eval",
                                         data_dir))
    assert objects["cfg"].data_name == "fashion_mnist" and objects["cfg"].data.val_size == 100
    assert metrics["test/acc"] == _metrics(run_dir)["test/acc"]


def test_eval_of_a_graph_run_takes_the_runs_data_model_and_seed_whole(tmp_path, data_dir):
    """From the image defaults, eval of a Cora GCN checkpoint builds Cora and the GCN with the run's settings only
    (no image batch_size left over as an unknown key). Naming the data again (``data=cora``) without the seed
    tests the run's split: ``data.split.seed: ${seed}`` follows the run's seed, not the default one."""
    run_dir = tmp_path / "cora"
    train(compose_cfg(["model=gcn", "data=cora", "seed=5", "trainer.max_epochs=2", "trainer.accelerator=cpu",
                       "logger=csv"], run_dir, data_dir))
    metrics, objects = train(compose_cfg(["train=false", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                          "trainer.accelerator=cpu"], tmp_path / "eval", data_dir))
    cfg = objects["cfg"]
    assert cfg.data_name == "cora" and cfg.model_name == "gcn" and "batch_size" not in cfg.data
    assert cfg.model.optimizer.lr == 0.01  # the run's optimizer settings, not the default mlp's
    assert cfg.seed == 5 and 0 <= metrics["test/acc"] <= 1
    again, objects = train(compose_cfg(["train=false", f"ckpt_path={run_dir}", "data=cora", "trainer.accelerator=cpu"],
                                       tmp_path / "again", data_dir))
    assert objects["cfg"].seed == 5 and objects["cfg"].data.split.seed == 5 and again["seed"] == 5
    assert again["test/acc"] == _metrics(run_dir)["test/acc"]


# ------------------------------------------------------------------ 5. a finished run is never rewritten
RERUNS = {  # name: (script, overrides, environment, exit code)
    "auto_resume": ("train.py", ["auto_resume=true"], {}, 0),
    "ckpt_path=last": ("train.py", ["ckpt_path=last"], {}, 0),
    # data=mnist named again, seed left out: data.seed (${seed}) follows the run's seed, so nothing changed
    "ckpt_path=last-seed-left-out": ("train.py", ["ckpt_path=last", "~SEED"], {}, 0),
    "ckpt_path=last-more-epochs": ("train.py", ["ckpt_path=last", "trainer.max_epochs=5",
                                                "resume_accept=[trainer.max_epochs]"], {}, 2),
    "fresh-with-LOCAL_RANK=1": ("train.py", [], {"LOCAL_RANK": "1"}, 2),
    "eval.py-into-the-run": ("eval.py", ["ckpt_path=CKPT"], {}, 2),
}


@pytest.mark.parametrize("case", RERUNS)
def test_finished_run_is_never_rewritten(data_dir, finished, case):
    script, overrides, env, code = RERUNS[case]
    overrides = [o.replace("CKPT", str(finished / "checkpoints" / "last.ckpt")) for o in overrides]
    before = _snapshot(finished)
    proc = _start(script, finished, data_dir, *overrides, env=env)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == code, out[-3000:]
    assert _snapshot(finished) == before  # every file byte-identical, none added


# A sweep into or inside a run, a run above other runs, a folder setting inside a run: refused before anything is
# written there (a sweep's folder: tests/test_sweep_rerun.py).
CLASHES = {  # name: (run_dir given to _start, overrides (<run>: the finished run), what the refusal says)
    "sweep-into-the-run": ("<run>/unused", ["hydra.mode=MULTIRUN", "hydra.sweep.dir=<run>"], "is the run directory"),
    "sweep-inside-the-run": ("<run>/unused", ["hydra.mode=MULTIRUN", "hydra.sweep.dir=<run>/sweep"], "lies inside the run"),
    "run-above-the-run": ("<run>/..", [], "holds a sweep or other runs (run/metrics.json)"),
    "data-in-the-run": ("<run>/../other", ["data.data_dir=<run>/data"], "data.data_dir=<run>/data lies inside"),
    "checkpoints-in-the-run": ("<run>/../other", ["callbacks.model_checkpoint.dirpath=<run>/checkpoints"],
                               "callbacks.model_checkpoint.dirpath=<run>/checkpoints lies inside"),
    # A run's own files outside its folder: another run given the same setting would write over them (the other
    # settings of this kind: test_a_run_writes_nothing_outside_its_folder).
    "checkpoints-beside-the-run": ("<run>/../other", ["callbacks.model_checkpoint.dirpath=<run>/../shared"],
                                   "callbacks.model_checkpoint.dirpath=<run>/../shared lies outside the run"),
}


@pytest.mark.parametrize("case", CLASHES)
def test_no_sweep_or_run_is_written_into_or_above_a_run(data_dir, finished, case):
    run_dir, overrides, said = CLASHES[case]

    def others() -> dict[str, str]:  # every file but the refused command's own folder
        return {k: v for k, v in _snapshot(finished.parent).items() if not k.startswith("other/")}

    before = others()
    proc = _start("train.py", Path(run_dir.replace("<run>", str(finished))), data_dir,
                  *(o.replace("<run>", str(finished)) for o in overrides))
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2 and said.replace("<run>", str(finished)) in out, out[-3000:]
    assert others() == before and "Launching" not in out


OUTSIDE = {  # name: (overrides (<out>: a folder beside the run), what the refusal says)
    "csv-history": (["logger=csv", "logger.csv.save_dir=<out>"], "logger.csv.save_dir=<out> lies outside the run"),
    "trainer-root": (["trainer.default_root_dir=<out>"], "trainer.default_root_dir=<out> lies outside the run"),
    "output-dir": (["paths.output_dir=<out>"], "paths.output_dir=<out> is not the folder Hydra records this run in"),
}


@pytest.mark.parametrize("case", OUTSIDE)
def test_a_run_writes_nothing_outside_its_folder(tmp_path, data_dir, case):
    overrides, said = OUTSIDE[case]
    out = str(tmp_path / "shared")
    with pytest.raises(ConfigError, match=re.escape(said.replace("<out>", out))):
        train(compose_cfg([*RUN, *(o.replace("<out>", out) for o in overrides)], tmp_path / "run", data_dir))
    assert not (tmp_path / "shared").exists()


def test_eval_started_inside_a_finished_run_writes_beside_it(data_dir, finished):
    """``cd <run dir>; python eval.py ckpt_path=best``: the evaluation goes to the logs folder beside the one that
    holds the run (here: beside the run), the run is not touched; a refused evaluation leaves nothing anywhere."""
    before, evals = _snapshot(finished), finished.parent / "logs" / "evals"

    def evaluate(*overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "eval.py"), "ckpt_path=best", f"paths.data_dir={data_dir}",
                               "data.download=false", *overrides], cwd=finished, capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)

    done = evaluate()
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert _snapshot(finished) == before  # not one byte written into the run, no logs/ folder in it
    (evaluation,) = evals.iterdir()
    assert json.loads((evaluation / "metrics.json").read_text())["test/acc"] == _metrics(finished)["test/acc"]
    refused = evaluate("seed=3")
    assert refused.returncode == 2 and "was trained with seed=0" in refused.stdout + refused.stderr
    assert list(evals.iterdir()) == [evaluation] and _snapshot(finished) == before
    inside = evaluate(f"hydra.run.dir={finished / 'evals' / 'mine'}")
    assert inside.returncode == 2 and "lies inside the run directory" in inside.stdout + inside.stderr
    assert _snapshot(finished) == before and not (finished / "evals").exists()


@pytest.mark.parametrize("recorded", ["train", "eval"])
def test_a_training_run_and_an_evaluation_never_share_a_folder(tmp_path, data_dir, finished, recorded):
    """An evaluation into a failed training run's folder would turn it into a finished run (and the reverse)."""
    folder = tmp_path / "failed"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"train: {str(recorded == 'train').lower()}\n")
    (folder / "error.txt").write_text("overrides: \nerror: DataNotFoundError: ...\n")
    before = _snapshot(folder)
    script, overrides = ("eval.py", [f"ckpt_path={finished}"]) if recorded == "train" else ("train.py", [])
    proc = _start(script, folder, data_dir, *overrides)
    out = proc.communicate(timeout=300)[0]
    said = "holds a training run" if recorded == "train" else "holds an evaluation"
    assert proc.returncode == 2 and said in out, out[-3000:]
    assert _snapshot(folder) == before


@pytest.mark.parametrize("layout", ["run-in-logs", "custom-run-dir", "sweep-in-logs"])
def test_started_inside_a_run_or_sweep_data_and_logs_go_outside_it(tmp_path, monkeypatch, layout):
    """``paths.root_dir`` (``.``), read inside a run or a sweep folder, is the folder above the logs folder that
    holds it (else the folder that holds it): a dataset download or a run's logs never go into a run."""
    folder = {"run-in-logs": "project/logs/runs/x", "custom-run-dir": "somewhere/x",
              "sweep-in-logs": "project/logs/multiruns/x"}[layout]
    held = tmp_path / folder
    (held / "checkpoints").mkdir(parents=True)
    (held / ("multirun.yaml" if layout.startswith("sweep") else "metrics.json")).write_text("{}")
    monkeypatch.delenv("ZOO_ROOT", raising=False)
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.chdir(held / "checkpoints")
    root = tmp_path / ("somewhere" if layout == "custom-run-dir" else "project")
    paths = compose(["model=logreg"]).paths
    assert Path(paths.root_dir) == root.resolve() and Path(paths.log_dir) == root.resolve() / "logs"
    assert Path(paths.data_dir) == root.resolve() / "data"
    monkeypatch.chdir(tmp_path)  # elsewhere: the root is where the command starts
    assert compose(["model=logreg"]).paths.root_dir == "."


def test_a_job_run_in_its_own_folder_keeps_data_and_logs_where_the_command_started(tmp_path, monkeypatch):
    """``hydra.job.chdir=true``: the job runs in its run folder, yet ``paths.*`` are read from where the command
    started (a dataset is never downloaded into the run)."""
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.delenv("ZOO_ROOT", raising=False)
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = compose(["model=logreg", "hydra.job.chdir=true"])
    run_dir = tmp_path / "logs" / "runs" / "x"
    run_dir.mkdir(parents=True)
    before = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(cfg)
    try:
        monkeypatch.chdir(run_dir)  # as Hydra does before the job
        assert Path(cfg.paths.data_dir) == tmp_path.resolve() / "data"
        assert Path(cfg.paths.log_dir) == tmp_path.resolve() / "logs"
    finally:
        HydraConfig.instance().cfg = before


# ------------------------------------------------------------------ 9. a sweep with failed jobs exits non-zero
@pytest.mark.parametrize(("models", "datasets", "failed", "extra"), [
    ("logreg", "mnist,fashion_mnist", ["1_logreg-fashion_mnist"], []),
    ("logreg,mlp", "fashion_mnist", ["0_logreg-fashion_mnist", "1_mlp-fashion_mnist"], []),
    ("logreg", "mnist,fashion_mnist", ["fashion_mnist/1"], ["hydra.sweep.subdir=${data_name}/${hydra.job.num}"]),
], ids=["one-of-two-fails", "all-fail", "nested-job-folders"])
def test_sweep_with_failed_jobs_exits_non_zero(tmp_path, data_dir, models, datasets, failed, extra):
    mnist_only = tmp_path / "data"
    mnist_only.mkdir()
    (mnist_only / "MNIST").symlink_to(data_dir / "MNIST", target_is_directory=True)
    proc = run_train("-m", f"model={models}", f"data={datasets}", *TINY, *extra, data_dir=mnist_only,
                     log_dir=tmp_path / "logs")
    text = output(proc)
    assert proc.returncode == 1, text[-3000:]
    assert f"Sweep finished with {len(failed)} FAILED job(s)" in text
    assert all(f"  {name}: error: DataNotFoundError" in text for name in failed)
    sweep_dir = next((tmp_path / "logs" / "multiruns").iterdir())  # no hydra.sweep.dir: a new timestamped folder
    finish = f"hydra.sweep.dir={sweep_dir}, i.e. python {ROOT / 'train.py'} -m model={models}"
    assert text.count(finish) == 2  # said at the start, and again at the end


# ------------------------------------------------------------------ 10. one run at a time per run directory
def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _lock_probe(run_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Another process that tries to take ``run_dir``'s lock."""
    code = f"from zoo.run import rundir; print(rundir.acquire({str(run_dir)!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in {**os.environ, "PYTHONPATH": str(ROOT), **env}.items() if v})


@pytest.mark.parametrize("case", ["second-run-refused", "stale-lock-taken-over", "live-pid-refused",
                                  "ddp-rank-joins", "LOCAL_RANK-alone-refused"])
def test_one_run_at_a_time_per_run_dir(tmp_path, data_dir, case):
    run_dir = tmp_path / "run"
    if case == "second-run-refused":  # a real train.py holds it; a second one started meanwhile is refused
        marker = tmp_path / "paused"
        first = _start("train.py", run_dir, data_dir, "+callbacks.pause._target_=tests.faults.PauseMidEpoch",
                       f"+callbacks.pause.marker={marker}", "+callbacks.pause.epoch=1")
        wait_for_marker(marker, first)
        hydra_before = _snapshot(run_dir / ".hydra")
        second = _start("train.py", run_dir, data_dir)
        out = second.communicate(timeout=300)[0]
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
        assert second.returncode == 2 and "is in use by another run (pid" in out, out[-3000:]
        assert _snapshot(run_dir / ".hydra") == hydra_before  # the second wrote nothing there
        train(compose_cfg([*RUN, "ckpt_path=last"], run_dir, data_dir))  # the lock is free again
        assert (run_dir / "metrics.json").is_file()
    elif case in ("stale-lock-taken-over", "live-pid-refused"):
        run_dir.mkdir()
        pid = _dead_pid() if case == "stale-lock-taken-over" else os.getppid()
        (run_dir / rundir.LOCK_NAME).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
        if case == "live-pid-refused":
            with pytest.raises(ConfigError, match=rf"in use by another run \(pid {pid} "):
                train(compose_cfg(RUN, run_dir, data_dir))
            return
        train(compose_cfg(RUN, run_dir, data_dir))
        assert (run_dir / "metrics.json").is_file() and not (run_dir / rundir.LOCK_NAME).exists()
    else:  # DDP ranks inherit the holder's token from its environment; LOCAL_RANK proves nothing
        with rundir.run_dir_lock(run_dir):
            token = os.environ[rundir.TOKEN_ENV]
            joined = _lock_probe(run_dir, {rundir.TOKEN_ENV: token, "LOCAL_RANK": "1"})
            alone = _lock_probe(run_dir, {rundir.TOKEN_ENV: "", "LOCAL_RANK": "1"})
        if case == "ddp-rank-joins":
            assert joined.returncode == 0 and joined.stdout.strip() == "False", joined.stderr[-2000:]
        else:
            assert alone.returncode != 0 and "is in use by another run" in alone.stderr


@pytest.mark.parametrize("stamp", ["${zoo_stamp:same}", "${now:same}"])
def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, data_dir, stamp):
    """A time-stamped run folder (the default one, or Hydra's ``${now:...}``) is new for every run: three runs that
    start together, each with the same stamp, all finish, each in a folder of its own; a refused one leaves none."""
    stamped = tmp_path / "runs" / f"{stamp}_logreg"
    runs = [_start("train.py", stamped, data_dir, "~SEED", f"seed={seed}") for seed in (1, 2, 3)]
    outs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], "\n".join(out[-2000:] for out in outs)
    folders = sorted((tmp_path / "runs").iterdir())
    assert [f.name for f in folders] == ["same_logreg", "same_logreg_2", "same_logreg_3"]
    assert sorted(json.loads((f / "metrics.json").read_text())["seed"] for f in folders) == [1, 2, 3]
    before = {f.name: _snapshot(f) for f in folders}
    refused = _start("train.py", stamped, data_dir, "model.optimizer.lr=-1")
    assert refused.wait(timeout=300) == 2
    assert {f.name: _snapshot(f) for f in sorted((tmp_path / "runs").iterdir())} == before  # and no 4th folder


@pytest.mark.parametrize("first", ["refused", "killed"])
def test_a_run_started_again_where_an_attempt_left_no_checkpoint_records_what_it_runs(tmp_path, data_dir, first):
    """The same ``hydra.run.dir`` again, with other settings, after an attempt that left no checkpoint (refused,
    or killed before its first epoch ended): ``.hydra/`` and the report say what ran; the attempt's record is kept
    beside, as ``.hydra_<time>/``."""
    run_dir = tmp_path / "runs" / "run"
    if first == "refused":
        assert _start("train.py", run_dir, data_dir, "model.optimizer.lr=-1").wait(timeout=300) == 2
    else:
        attempt = _start("train.py", run_dir, data_dir, "model.optimizer.lr=-1", *_crash_at(0))
        attempt.communicate(timeout=300)
        assert attempt.returncode != 0 and not rundir.checkpoints(run_dir)
    again = _start("train.py", run_dir, data_dir, "model.optimizer.lr=0.2")
    out = again.communicate(timeout=300)[0]
    assert again.returncode == 0, out[-3000:]
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").model.optimizer.lr == 0.2
    (earlier,) = run_dir.glob(".hydra_*")
    assert OmegaConf.load(earlier / "config.yaml").model.optimizer.lr == -1
    (record,) = collect(tmp_path / "runs")
    assert record.status == "done" and record.config["model.optimizer.lr"] == "0.2"


@pytest.mark.parametrize("left", ["a record only", "checkpoints", "a result"])
def test_only_an_attempt_that_left_nothing_to_resume_is_set_aside(tmp_path, left):
    """A fresh start keeps the earlier attempt's record and W&B id beside it (its own W&B run, not the attempt's);
    a run with checkpoints or a result keeps them: it resumes, or is final."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (tmp_path / "wandb_run_id.txt").write_text("abc\n")
    if left != "a record only":
        (tmp_path / ("checkpoints" if left == "checkpoints" else "")).mkdir(exist_ok=True)
        (tmp_path / ("checkpoints/last.ckpt" if left == "checkpoints" else "metrics.json")).write_text("{}")
    before = _snapshot(tmp_path)
    rundir.set_aside_attempt(tmp_path)
    if left != "a record only":
        assert _snapshot(tmp_path) == before
        return
    assert not (tmp_path / ".hydra").exists() and not (tmp_path / "wandb_run_id.txt").exists()
    (kept,) = tmp_path.glob(".hydra_*")
    (kept_id,) = tmp_path.glob("wandb_run_id_*.txt")
    assert (kept / "config.yaml").read_text() == "seed: 1\n" and kept_id.read_text() == "abc\n"


def _slurm_task(job: str, rank: int, restarts: int = 0) -> dict[str, str]:
    """The environment srun gives task ``rank`` of a two-task step of SLURM job ``job``."""
    return {"SLURM_JOB_ID": job, "SLURM_NTASKS": "2", "SLURM_STEP_ID": "0", "SLURM_PROCID": str(rank),
            "SLURM_RESTART_COUNT": str(restarts)}


@pytest.mark.parametrize("case", ["same-job-rank-joins", "other-job-refused", "same-job-after-requeue-refused",
                                  "rank-without-rank-zero-gives-up"])
def test_the_ranks_of_one_slurm_job_share_its_lock(tmp_path, monkeypatch, case):
    run_dir = tmp_path / "run"
    if case == "rank-without-rank-zero-gives-up":  # rank 0 was refused or died: rank 1 must not wait forever
        monkeypatch.setattr(rundir, "JOIN_WAIT_S", 1.0)
        for key, value in _slurm_task("7", rank=1).items():
            monkeypatch.setenv(key, value)
        with pytest.raises(ConfigError, match="Rank 1 of SLURM job 7 waited 1 s for rank 0"):
            rundir.acquire(run_dir)
        return
    for key, value in _slurm_task("7", rank=0).items():
        monkeypatch.setenv(key, value)
    with rundir.run_dir_lock(run_dir) as owner:
        assert owner
        env = {"same-job-rank-joins": _slurm_task("7", 1), "other-job-refused": _slurm_task("8", 0),
               "same-job-after-requeue-refused": _slurm_task("7", 0, restarts=1)}[case]
        probe = _lock_probe(run_dir, {rundir.TOKEN_ENV: "", **env})
    if case == "same-job-rank-joins":
        assert probe.returncode == 0 and probe.stdout.strip() == "False", probe.stderr[-2000:]
    else:
        assert probe.returncode != 0 and "is in use by another run" in probe.stderr


# 12. what reproducibility depends on: the thread count is set and recorded (tests/test_speed.py).


def test_a_session_that_ran_nothing_leaves_no_record_of_what_it_would_have_run(tmp_path, data_dir):
    """A resume that accepted a change (``resume_accept``) but was refused: its record is kept beside as
    ``.hydra/ran_nothing_<time>/``, and the report groups the run by what ran (the rule: the test below)."""
    run_dir = tmp_path / "runs" / "run"
    stopped = _start("train.py", run_dir, data_dir, *_crash_at(2))
    assert stopped.wait(timeout=300) != 0 and rundir.status(run_dir) == "unfinished"
    attempt = _start("train.py", run_dir, data_dir, "ckpt_path=last", "resume_accept=[trainer.max_epochs]",
                     "trainer.max_epochs=1")  # two epochs are trained already: refused
    assert attempt.wait(timeout=300) == 2
    assert len(list((run_dir / ".hydra").glob("ran_nothing_*"))) == 1
    resumed = _start("train.py", run_dir, data_dir, "ckpt_path=last")
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert len(list((run_dir / ".hydra").glob("resumed_*"))) == 1  # the session that ran
    (record,) = collect(tmp_path / "runs")
    assert record.status == "done" and record.config["trainer.max_epochs"] == "3"


@pytest.mark.parametrize("session", ["saved nothing", "saved a checkpoint", "found the folder in use"])
def test_only_a_session_that_saved_nothing_sets_its_record_aside(tmp_path, session):
    """A session that ends in an error (a refusal, a crash, a stop signal) and left the checkpoints and the result as
    they were: its own ``resumed_<time>/`` record becomes ``ran_nothing_<time>/``; an earlier session's stays."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_text("epoch 1")
    os.utime(tmp_path / "checkpoints" / "last.ckpt", (0, 0))
    earlier, own = (tmp_path / ".hydra" / f"resumed_2026-01-0{day}_00-00-00" for day in (1, 2))
    earlier.mkdir(parents=True)
    os.utime(earlier, (0, 0))  # written by an earlier process
    own.mkdir()
    error = rundir.InUseError("in use") if session == "found the folder in use" else Crash("crash")
    with pytest.raises(type(error)), rundir.session(tmp_path):
        if session == "saved a checkpoint":
            (tmp_path / "checkpoints" / "last.ckpt").write_text("epoch 2")
        raise error
    set_aside = sorted(p.name for p in (tmp_path / ".hydra").iterdir())
    kept = ["resumed_2026-01-01_00-00-00", "resumed_2026-01-02_00-00-00"]
    assert set_aside == (["ran_nothing_2026-01-02_00-00-00", kept[0]] if session == "saved nothing" else kept)
