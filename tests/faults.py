"""Fault injection for the reliability tests: a network whose loss turns NaN, a run that waits to be killed.

They are addressed by ``_target_`` in command-line overrides, so they also work in ``train.py`` subprocesses.
"""

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from zoo.nets.logreg import LogisticRegression


class NaNAfterSteps(LogisticRegression):
    """Logistic regression whose training logits become NaN from training step ``nan_from_step`` on."""

    def __init__(self, in_features: int, num_classes: int, nan_from_step: int = 6) -> None:
        super().__init__(in_features, num_classes)
        self.nan_from_step, self.steps = nan_from_step, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)  # [B, num_classes]
        if self.training:
            self.steps += 1
            if self.steps > self.nan_from_step:
                return logits * float("nan")
        return logits


class PauseMidEpoch(Callback):
    """At batch ``batch`` of epoch ``epoch`` of ``stage``, write ``marker`` and wait (up to ``seconds``) to be killed.

    ``stage``: ``train``, ``validate`` (after the sanity check), ``sanity`` (the sanity check) or ``test``; the
    epoch counts only for ``train`` and ``validate``. On SIGTERM, Lightning's handler sets
    ``trainer.received_sigterm``; the wait ends and Lightning stops. SIGINT interrupts the wait at once.
    """

    def __init__(self, marker: str, epoch: int = 2, batch: int = 1, seconds: float = 60.0, stage: str = "train") -> None:
        self.marker, self.epoch, self.batch, self.seconds, self.stage = Path(marker), epoch, batch, seconds, stage

    def _pause(self, trainer: L.Trainer, stage: str, batch_idx: int) -> None:
        if stage != self.stage or batch_idx != self.batch:
            return
        if stage in ("train", "validate") and trainer.current_epoch != self.epoch:
            return
        self.marker.write_text(str(trainer.global_step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not trainer.received_sigterm:
            time.sleep(0.02)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self._pause(trainer, "train", batch_idx)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx,
                                dataloader_idx: int = 0) -> None:
        self._pause(trainer, "sanity" if trainer.sanity_checking else "validate", batch_idx)

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx,
                          dataloader_idx: int = 0) -> None:
        self._pause(trainer, "test", batch_idx)


class Crash(RuntimeError):
    """The fault :class:`CrashAt` raises."""


class CrashAt(Callback):
    """Raise :class:`Crash` at the start of training epoch ``epoch`` (after ``last.ckpt`` of the epoch before),
    or, with ``epoch=-1``, at the start of testing: a run stopped part-way, without the cost of a subprocess."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Crash(f"crash at the start of epoch {self.epoch}")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epoch == -1:
            raise Crash("crash at the start of testing")
