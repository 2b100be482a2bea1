"""The names of the files in a run folder, each defined here only, and files written whole or not at all."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

# A run (or sweep) folder: zoo.run.rundir owns it (status, lock, admission); python -m zoo.report reads it.
METRICS_FILE = "metrics.json"  # the result: written last, whole; a run that has it is finished
ERROR_FILE = "error.txt"  # why a run or sweep job failed (its "error: " line)
PREDICTIONS_FILE = "predictions.csv"  # per-node test predictions, read by python -m zoo.report
CHECKPOINT_DIR = "checkpoints"
LAST_CKPT = "last.ckpt"
LOCK_NAME = ".zoo.lock"
SWEEP_RECORD = "multirun.yaml"  # the sweep's config: by Hydra's basic sweeper, else zoo.run.sweep.admit_sweep
HYDRA_DIR = ".hydra"  # Hydra's record of a job: config.yaml, overrides.yaml, hydra.yaml
CONFIG_TREE = "config_tree.log"
WANDB_ID_FILE = "wandb_run_id.txt"  # the run's W&B id: a resumed run continues its W&B run (zoo.loggers)
RECORD_KEY = "zoo.RunRecord"  # a checkpoint's run record (zoo.callbacks.run_record.RunRecord)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it, then rename it to ``path`` (atomic
    within a folder: ``path`` is the previous complete file or the new one, even if power fails mid-write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # the permissions of a plainly created file, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path
