"""What a run may write where: a run directory holds one run, and a finished run is never written again.

A fresh run refuses a directory holding checkpoints or ``metrics.json``; only the run itself continues there
(:func:`resumes_in`); ``eval.py`` writes into a folder of its own. What Hydra writes there:
``hydra_plugins/zoo_hydra/resolvers.py``.
"""

from pathlib import Path

from omegaconf import DictConfig

from zoo.errors import ConfigError

METRICS_FILE = "metrics.json"


def checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of the run in ``run_dir``: ``checkpoints/*.ckpt`` and Lightning's ``hpc_ckpt_<n>.ckpt``."""
    run_dir = Path(run_dir)
    return sorted([*run_dir.glob("checkpoints/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")])


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / METRICS_FILE).is_file()


def continues_run(cfg: DictConfig) -> bool:
    """Whether ``cfg`` continues the run in its own run directory: ``ckpt_path=last``, or ``auto_resume`` and no
    ``ckpt_path`` (the one ``auto_resume`` rule)."""
    ckpt = cfg.get("ckpt_path")
    return ckpt == "last" or (ckpt is None and bool(cfg.get("auto_resume")))


def resumes_in(cfg: DictConfig, run_dir: str | Path) -> bool:
    """Whether ``cfg`` continues the run of ``run_dir`` (rather than starting one)."""
    ckpt = cfg.get("ckpt_path")
    if continues_run(cfg):
        return True
    return ckpt is not None and Path(run_dir).resolve() in Path(ckpt).resolve().parents


def check_run_dir(cfg: DictConfig, run_dir: str | Path) -> None:
    """Refuse to start a run (or an evaluation) in a directory that holds another run's results.

    Raises:
        ConfigError: ``run_dir`` holds checkpoints or a ``metrics.json``, and ``cfg`` does not resume that run.
    """
    run_dir = Path(run_dir)
    held = [p for p in (run_dir / METRICS_FILE,) if p.is_file()] + checkpoints(run_dir)
    if not held:
        return
    first = (checkpoints(run_dir) or held)[0].relative_to(run_dir)
    if not cfg.get("train", True):
        raise ConfigError(
            f"hydra.run.dir={run_dir} holds a run ({first}, ...): eval.py writes into a new folder of its own and "
            f"never over a run's files. Leave hydra.run.dir out (logs/evals/<time>), or give a new one."
        )
    if not resumes_in(cfg, run_dir):
        what = "checkpoints" if checkpoints(run_dir) else "the results"
        raise ConfigError(
            f"{run_dir / 'checkpoints'} already holds {what} of an earlier run ({first}, ...). Resume it with "
            f"ckpt_path=last (or auto_resume=true), or start afresh in another hydra.run.dir; Zoo does not "
            f"overwrite them."
        )
