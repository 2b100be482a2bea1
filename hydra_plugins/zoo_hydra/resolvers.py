"""The resolvers ``configs/hydra/default.yaml`` uses to decide what Hydra writes into a run directory.

Nothing into a finished run, ``.hydra/resumed_<time>/`` into a resumed one, nothing from the ranks of a multi-task
SLURM step after the first. Resolvers, because Hydra writes ``.hydra/`` before any callback of a job runs, with
every launcher. Hydra imports each module under ``hydra_plugins`` when it starts (``hydra.main`` and the compose
API alike), so they are registered before any config is composed.
"""

import os
import time
from pathlib import Path

from omegaconf import OmegaConf

from zoo.run import lock
from zoo.run.rundir import is_finished


def slurm_rank() -> int:
    """This process's rank among the tasks of a multi-task SLURM job step (0 elsewhere)."""
    task = lock.slurm_task()
    return task[1] if task else 0


def record_subdir(run_dir: str, subdir: str) -> str | None:
    """``hydra.output_subdir``: ``None`` (nothing) for a finished run and SLURM ranks after the first;
    ``<subdir>/resumed_<time>`` for a run that already holds a record (a resume, a requeued SLURM job, a sweep
    finished by re-running it); else ``subdir``."""
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
