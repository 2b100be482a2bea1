"""Logger factories whose behaviour depends on the machine (``configs/logger/*.yaml``)."""

import csv
import logging
import secrets
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from zoo.files import WANDB_ID_FILE
from zoo.report.to_wandb import mode as wandb_mode

log = logging.getLogger(__name__)


def wandb_logger(mode: str | None = None, **kwargs: Any) -> WandbLogger:
    """A :class:`WandbLogger` that works with no account and no network. ``mode=None``: ``WANDB_MODE`` when
    set, else ``online`` if logged in and not in a SLURM job, else ``offline``. Without an ``id``, the id is
    kept in ``<save_dir>/wandb_run_id.txt``, so a resumed run in the same run directory continues it."""
    if kwargs.get("id") is None and kwargs.get("save_dir"):
        path = Path(kwargs["save_dir"]) / WANDB_ID_FILE
        if path.is_file():
            kwargs["id"] = path.read_text().strip()
        else:
            kwargs["id"] = secrets.token_hex(4)  # W&B run ids: up to 64 letters/digits, unique in a project
            if rank_zero_only.rank == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(kwargs["id"] + "\n")
        kwargs["resume"] = "allow"
    if mode is None:
        mode = wandb_mode()
        if mode == "offline":
            log.info("W&B: logging offline into %s (`wandb sync` it later; WANDB_MODE=online to go online).",
                     kwargs.get("save_dir"))
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:  # a sweep's jobs: one group
        kwargs["group"] = Path(str(HydraConfig.get().sweep.dir)).name
    logger = WandbLogger(mode=mode, **kwargs)
    logger._wandb_init.pop("anonymous", None)  # unset: W&B warns about any value (tests/test_lightning_internals.py)
    return logger


class _HistoryWriter(ExperimentWriter):
    """Lightning's CSV writer that, on resume, keeps ``metrics.csv``'s rows up to the checkpoint's epoch
    (later ones, and test rows, are dropped) instead of deleting the file."""

    def __init__(self, log_dir: str, keep_until_epoch: int | None) -> None:
        self._keep_until_epoch = keep_until_epoch
        super().__init__(log_dir)
        if self._fs.isfile(self.metrics_file_path):  # the next rows are appended under the same header
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])

    def _check_log_dir_exists(self) -> None:
        if self._keep_until_epoch is None or not self._fs.isfile(self.metrics_file_path):
            return super()._check_log_dir_exists()
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            fields, rows = reader.fieldnames or [], list(reader)
        kept = [r for r in rows if r.get("epoch") not in (None, "") and float(r["epoch"]) <= self._keep_until_epoch
                and not any(r.get(k) for k in fields if k.startswith("test/"))]
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        return None


class HistoryCSVLogger(CSVLogger):
    """:class:`CSVLogger` whose ``metrics.csv`` survives a resume: the runner sets :attr:`resume_epoch` (the
    checkpoint's epoch; ``None``: a fresh run) before the first row is written."""

    resume_epoch: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(self.log_dir, self.resume_epoch)
        return self._experiment
