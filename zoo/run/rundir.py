"""What a run may write where: a run directory holds one run, and a finished run is never written again.

- A fresh run refuses a run directory that holds checkpoints or a ``metrics.json`` of an earlier run.
- Only the run itself continues there (``ckpt_path=last``, ``auto_resume=true`` or a checkpoint inside it);
  once it is finished (``metrics.json``), resuming it again changes nothing (see :mod:`zoo.run.resume`).
- ``eval.py`` writes into a new folder of its own, never into a run directory that holds a run.

:class:`RunDirGuard` applies these rules, and takes the run directory's lock, in Hydra's ``on_run_start``:
before Hydra writes ``.hydra/`` into the directory. A resumed run keeps the first ``.hydra/`` (the run's own
record) and writes its own into ``.hydra/resumed_<time>/``; a finished run gets nothing written (:func:`record_subdir`).
"""

import logging
import os
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from zoo.errors import ConfigError, ZooError
from zoo.run import lock

log = logging.getLogger(__name__)

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


def slurm_rank() -> int:
    """This process's rank among the tasks of a multi-task SLURM job step (0 elsewhere)."""
    task = lock.slurm_task()
    return task[1] if task else 0


def record_subdir(run_dir: str, subdir: str) -> str | None:
    """``hydra.output_subdir`` for the run directory Hydra is about to write ``.hydra/`` into.

    A finished run's files are final: nothing (``None``). A run that already holds a record (a resume, a requeued
    SLURM job, a sweep finished by re-running it): ``.hydra/resumed_<time>``. The ranks of a multi-task SLURM job
    after the first: nothing. Else ``.hydra``. A resolver (``${zoo_record:...}`` in ``configs/hydra/default.yaml``),
    because Hydra writes ``.hydra/`` before any callback of a sweep job runs, with every launcher.
    """
    if is_finished(run_dir) or slurm_rank() > 0:
        return None
    if (Path(run_dir) / subdir / "config.yaml").is_file():
        return f"{subdir}/resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    return subdir


def log_file(run_dir: str, name: str) -> str:
    """The job's log file; ``os.devnull`` for a finished run (nothing appended) and SLURM ranks after the first."""
    if is_finished(run_dir) or slurm_rank() > 0:
        return os.devnull
    return str(Path(run_dir) / f"{name}.log")


def run_stamp(pattern: str) -> str:
    """The time stamp in a run directory's name; ``slurm-<job id>`` for the tasks of one multi-task SLURM step,
    which start at different moments (on different nodes) but are one run."""
    if lock.slurm_task() is not None:
        array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"slurm-{array}_{index}" if array else f"slurm-{os.environ['SLURM_JOB_ID']}"
    return time.strftime(pattern)


OmegaConf.register_new_resolver("zoo_stamp", run_stamp, replace=True)
OmegaConf.register_new_resolver("zoo_record", record_subdir, replace=True)
OmegaConf.register_new_resolver("zoo_log_file", log_file, replace=True)


class RunDirGuard(Callback):
    """Hydra callback: check and lock the run directory before Hydra writes into it (single runs)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from zoo.run.cli import exit_with_message

        HydraConfig.instance().set_config(config)
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.run.dir = str(run_dir)  # resolved once: `${now:...}` must name the directory locked here
        try:
            lock.acquire(run_dir)  # first: a directory in use is refused as such, whatever it holds
            check_run_dir(config, run_dir)
        except ZooError as err:
            lock.release(run_dir)
            exit_with_message(err)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        lock.release(str(config.hydra.run.dir))
