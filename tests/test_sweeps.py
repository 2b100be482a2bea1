"""Sweeps: a failed job is reported, the others are recorded, the sweep exits 1; Optuna; SLURM and submitit."""

import json
import os
from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.runs import TINY, output, run_train
from zoo.run.runner import _resolve_ckpt


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


def test_slurm_launcher_composes(make_cfg, monkeypatch):
    monkeypatch.setenv("ZOO_SLURM_PARTITION", "gpu-long")
    cfg = make_cfg("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2",
                   "hydra.launcher.gpus_per_node=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu-long"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)  # one task per GPU
    assert launcher.additional_parameters.signal == "USR1@120"  # Lightning's requeue signal, 2 min early
    assert launcher.timeout_min > 0
    assert type(instantiate(launcher)).__name__ == "SlurmLauncher"  # the plugin accepts every setting


def test_slurm_job_script_requeues_through_lightning(make_cfg, tmp_path, monkeypatch):
    """The sbatch script the launcher would submit: Lightning's SIGUSR1 (not submitit's USR2) and --requeue."""
    submitit = pytest.importorskip("submitit")
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun here
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = make_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu")
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    params.pop("submitit_folder")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python train.py", "uid")
    assert "#SBATCH --signal=USR1@120" in script and "USR2" not in script
    assert "#SBATCH --requeue" in script and "#SBATCH --partition=gpu" in script
    assert "#SBATCH --ntasks-per-node=1" in script and "#SBATCH --gpus-per-node=1" in script


def test_requeued_job_resumes_from_lightning_hpc_checkpoint(make_cfg, tmp_path):
    """A requeued SLURM job reruns in the same run dir; auto_resume picks the newest checkpoint there."""
    cfg = make_cfg("auto_resume=true")
    assert _resolve_ckpt(cfg) is None  # nothing to resume: start fresh
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"")
    assert _resolve_ckpt(cfg) == str(last)
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # saved by Lightning on SIGUSR1, before `scontrol requeue`
    hpc.write_bytes(b"")
    os.utime(last, (1, 1))
    assert _resolve_ckpt(cfg) == str(hpc)
