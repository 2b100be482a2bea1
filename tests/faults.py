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
    """At batch ``batch`` of epoch ``epoch``, write ``marker`` and wait (up to ``seconds``) to be killed.

    On SIGTERM, Lightning's handler sets ``trainer.received_sigterm``; the wait ends and Lightning stops.
    """

    def __init__(self, marker: str, epoch: int = 2, batch: int = 1, seconds: float = 60.0) -> None:
        self.marker, self.epoch, self.batch, self.seconds = Path(marker), epoch, batch, seconds

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch != self.epoch or batch_idx != self.batch:
            return
        self.marker.write_text(str(trainer.global_step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not trainer.received_sigterm:
            time.sleep(0.02)
