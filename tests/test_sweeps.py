"""Sweeps: a failed job is reported, the others are recorded, the sweep exits 1; Optuna; SLURM and submitit."""

import json
import os
from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

from tests.runs import TINY, output, run_train
from zoo.run.plan import resolve_checkpoint


@pytest.fixture
def mnist_only(tmp_path, data_dir) -> Path:
    """A data folder with MNIST but no FashionMNIST: every data=fashion_mnist job fails on purpose."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "MNIST").symlink_to(data_dir / "MNIST", target_is_directory=True)
    return root


def _sweep_dir(log_dir: Path) -> Path:
    (sweep,) = (log_dir / "multiruns").iterdir()
    return sweep


def _check_grid(sweep: Path, text: str, jobs: dict[str, bool]) -> None:
    """Each job dir holds metrics.json (done) or error.txt (failed); the failures are reported at the end."""
    for name, ok in jobs.items():
        job = sweep / name
        assert (job / "metrics.json").is_file() == ok, (name, text[-3000:])
        assert (job / "error.txt").is_file() != ok, name
        if not ok:
            assert "DataNotFoundError" in (job / "error.txt").read_text()
            assert f"  {name}: error: DataNotFoundError" in text
    assert f"Sweep finished with {sum(not ok for ok in jobs.values())} FAILED job(s)" in text


@pytest.mark.slow
def test_grid_sweep_survives_a_failed_job(tmp_path, mnist_only):
    log_dir = tmp_path / "logs"
    proc = run_train("-m", "model=logreg,mlp", "data=mnist,fashion_mnist", *TINY, data_dir=mnist_only,
                     log_dir=log_dir)
    text = output(proc)
    assert proc.returncode == 1, text[-3000:]  # the failures are listed and the sweep's exit code says so
    sweep = _sweep_dir(log_dir)
    _check_grid(sweep, text, {"0_logreg-mnist": True, "1_logreg-fashion_mnist": False,
                              "2_mlp-mnist": True, "3_mlp-fashion_mnist": False})
    metrics = json.loads((sweep / "2_mlp-mnist" / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["params"] > 0


@pytest.mark.slow
def test_same_sweep_through_submitit_local(tmp_path, mnist_only):
    log_dir = tmp_path / "logs"
    proc = run_train("-m", "hydra/launcher=submitit_local", "model=logreg", "data=mnist,fashion_mnist", *TINY,
                     data_dir=mnist_only, log_dir=log_dir)
    text = output(proc)
    assert proc.returncode == 1, text[-3000:]
    sweep = _sweep_dir(log_dir)
    assert (sweep / ".submitit").is_dir()  # the jobs went through submitit, each in its own process
    _check_grid(sweep, text, {"0_logreg-mnist": True, "1_logreg-fashion_mnist": False})


@pytest.mark.slow
def test_optuna_search_two_trials(tmp_path, data_dir):
    log_dir = tmp_path / "logs"
    proc = run_train("hparams_search=logreg", "hydra.sweeper.n_trials=2", "data=mnist", *TINY,
                     data_dir=data_dir, log_dir=log_dir)
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    sweep = _sweep_dir(log_dir)
    trials = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert trials == ["0_logreg-mnist", "1_logreg-mnist"]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(json.loads((sweep / t / "metrics.json").read_text())["val/acc_best"] for t in trials)
    assert results["best_value"] == pytest.approx(best)  # train() handed optimized_metric to Optuna
    assert set(results["best_params"]) == {"model.optimizer.lr", "model.optimizer.weight_decay", "data.batch_size"}

    # Optuna's sweeper writes no multirun.yaml: Zoo does, so the same command finishes or extends the search.
    assert (sweep / "multirun.yaml").is_file()
    kept = {t: (sweep / t / "metrics.json").read_bytes() for t in trials}
    again = run_train("hparams_search=logreg", "hydra.sweeper.n_trials=3", "data=mnist", *TINY, "extras.quiet=true",
                      f"hydra.sweep.dir={sweep}", data_dir=data_dir, log_dir=log_dir)  # what is shown may differ
    text = output(again)
    assert again.returncode == 0, text[-3000:]
    assert all(f"Sweep job {t} is done" in text for t in trials)
    assert {t: (sweep / t / "metrics.json").read_bytes() for t in trials} == kept
    values = [json.loads((sweep / f"{n}_logreg-mnist" / "metrics.json").read_text())["val/acc_best"] for n in range(3)]
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"] == pytest.approx(max(values))

    # Another sampler proposes other values for a finished trial's folder: the sweep stops, nothing is scored.
    other = run_train("hparams_search=logreg", "hydra.sweeper.n_trials=3", "data=mnist", *TINY,
                      "hydra.sweeper.sampler.seed=99", f"hydra.sweep.dir={sweep}", data_dir=data_dir, log_dir=log_dir)
    text = output(other)
    assert other.returncode == 2, text[-3000:]
    assert "0_logreg-mnist holds a finished job of other settings (model.optimizer.lr: " in text


@pytest.mark.parametrize(("overrides", "needs"), [
    ([], {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": None}),
    (["trainer=ddp_cpu", "trainer.devices=3"], {"nodes": 1, "tasks_per_node": 3, "gpus_per_node": None}),
    (["trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2"],
     {"nodes": 2, "tasks_per_node": 1, "gpus_per_node": None}),
    (["trainer=gpu", "trainer.accelerator=gpu"], {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": 1}),
    (["trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=4", "trainer.num_nodes=2"], {"nodes": 2, "tasks_per_node": 4, "gpus_per_node": 4}),
    (["data=cora", "model=gcn", "trainer=ddp_cpu", "trainer.devices=2"],  # one full graph: one device
     {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": None}),
], ids=["cpu", "ddp_cpu", "two-nodes", "gpu", "ddp-gpus", "full-batch-graph"])
def test_slurm_tasks_and_gpus_follow_the_trainer(make_cfg, overrides, needs):
    """(make_cfg sets trainer.accelerator=cpu: the GPU cases set it back.)"""
    from zoo.run.slurm import trainer_resources

    assert trainer_resources(make_cfg(*overrides)) == needs


def test_slurm_gpu_count_must_be_given(make_cfg):
    from zoo.errors import ConfigError
    from zoo.run.slurm import trainer_resources

    with pytest.raises(ConfigError, match="trainer.devices=<GPUs per node>"):
        trainer_resources(make_cfg("trainer=ddp", "trainer.accelerator=gpu"))  # devices=-1: every GPU Lightning finds


def test_slurm_launcher_composes_and_its_script_requeues_through_zoo(make_cfg, tmp_path, monkeypatch):
    """The sbatch script the launcher submits: SIGUSR1 (Zoo's requeue signal, not submitit's USR2), --requeue."""
    submitit = pytest.importorskip("submitit")
    monkeypatch.setenv("ZOO_SLURM_PARTITION", "gpu-long")
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun needed
    from submitit.slurm.slurm import _make_sbatch_string

    cfg = make_cfg("hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher" and launcher.params["partition"] == "gpu-long"
    assert launcher.params["max_num_timeout"] == cfg.max_requeues  # one budget for requeues
    executor = launcher._executor({"nodes": 2, "tasks_per_node": 4, "gpus_per_node": 4})
    script = _make_sbatch_string(command="python train.py", folder=tmp_path, map_count=6,
                                 **executor._executor.parameters)
    assert "#SBATCH --signal=USR1@120" in script and "USR2" not in script and "#SBATCH --requeue" in script
    assert "#SBATCH --partition=gpu-long" in script and "#SBATCH --array=0-5%6" in script
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script
    assert "#SBATCH --gpus-per-node=4" in script
    cpu = _make_sbatch_string(command="x", folder=tmp_path, **launcher._executor(
        {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": None})._executor.parameters)
    assert "gpus" not in cpu and "gres" not in cpu  # a CPU partition takes it


def test_requeued_job_resumes_from_lightning_hpc_checkpoint(make_cfg, tmp_path):
    """A requeued SLURM job reruns in the same run dir; auto_resume picks the newest checkpoint there."""
    cfg = make_cfg("auto_resume=true")
    assert resolve_checkpoint(cfg) is None  # nothing to resume: start fresh
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"")
    assert resolve_checkpoint(cfg) == str(last)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # saved by Lightning on SIGUSR1, before `scontrol requeue`
    hpc.write_bytes(b"")
    os.utime(last, (1, 1))
    assert resolve_checkpoint(cfg) == str(hpc)


def test_a_grid_that_sweeps_a_key_the_sweep_sets_is_one_line(tmp_path, data_dir):
    """hydra.sweeper.grid.<trigger> sweeping a key the sweep already sets: its message alone, exit code 2."""
    preset = tmp_path / "configs" / "hparams_search" / "clash.yaml"
    preset.parent.mkdir(parents=True)
    preset.write_text("# @package _global_\ndefaults:\n  - override /hydra/sweeper: grid\nhydra:\n  sweeper:\n"
                      "    grid:\n      model=logreg:\n        seed: 3,4\n")
    proc = run_train("-m", "model=logreg", "seed=0,1", "hparams_search=clash",
                     f"hydra.searchpath=[file://{tmp_path / 'configs'}]", *TINY, data_dir=data_dir,
                     log_dir=tmp_path / "logs")
    text = output(proc)
    assert proc.returncode == 2, text[-3000:]
    assert "hydra.sweeper.grid.model=logreg sweeps seed, which the sweep already sets" in text
    assert "Traceback" not in text and "Launching" not in text


def test_the_slurm_plugin_imports_silently_without_its_extra():
    """Hydra imports every module under hydra_plugins at start-up: without the sweeps extra the SLURM launcher's
    module must import (no "Error importing" warning on every run); PreflightChecks names the extra when it is asked for."""
    import subprocess
    import sys

    from tests.runs import ROOT

    code = ("import sys, warnings; sys.modules['hydra_plugins.hydra_submitit_launcher'] = None; "
            "sys.modules['hydra_plugins.hydra_submitit_launcher.submitit_launcher'] = None; "
            "warnings.simplefilter('error'); from hydra.core.plugins import Plugins; Plugins.instance(); "
            "import hydra_plugins.zoo_hydra.slurm as s; print(s.SlurmLauncher.__mro__[1].__name__)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "Launcher", done.stderr[-2000:]
