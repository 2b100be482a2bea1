"""Fault injection for the reliability tests: a network whose loss turns NaN, a run that waits to be killed.

They are addressed by ``_target_`` in command-line overrides, so they also work in ``train.py`` subprocesses.
"""

import os
import time
from pathlib import Path

import lightning as L
import torch
from hydra.experimental.callback import Callback as HydraCallback
from lightning.pytorch.callbacks import Callback

import zoo.signals as signals
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

    def __init__(self, marker: str, epoch: int = 2, batch: int = 1, seconds: float = 60.0, stage: str = "train",
                 once: bool = False) -> None:
        self.marker, self.epoch, self.batch, self.seconds, self.stage = Path(marker), epoch, batch, seconds, stage
        self.once = once  # pause only while ``marker`` does not exist (a requeued or re-run job goes on)

    def _pause(self, trainer: L.Trainer, stage: str, batch_idx: int) -> None:
        if stage != self.stage or batch_idx != self.batch or (self.once and self.marker.exists()):
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


class CrashOnce(CrashAt):
    """:class:`CrashAt` the first time only: the run that finds ``marker`` goes on (a fault that a re-run survives)."""

    def __init__(self, marker: str, epoch: int = 1) -> None:
        super().__init__(epoch)
        self.marker = Path(marker)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.epoch:
            return
        try:  # created exclusively: of jobs that start together, exactly one crashes
            with self.marker.open("x") as f:
                f.write("crashed once")
        except FileExistsError:
            return
        raise Crash(f"crash at the start of epoch {self.epoch}")


def slurm_job_id() -> str:
    """This SLURM job's id as scancel and scontrol take it (``<array>_<task>`` in a job array)."""
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    return f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID", "")


class PauseOnJobEnd(HydraCallback):
    """Hydra callback: pause (once) after the job returned, its metrics.json written (``hydra.callbacks.<name>``)."""

    def __init__(self, marker: str, seconds: float = 60.0) -> None:
        self.marker, self.seconds = Path(marker), seconds

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if not self.marker.exists():
            self.marker.write_text(f"{slurm_job_id()} paused after metrics.json")
            time.sleep(self.seconds)


class HogMemory(Callback):
    """Hold ``gb`` GiB of touched memory at the start of training (a job that goes over its memory limit)."""

    def __init__(self, gb: float = 2.0, seconds: float = 30.0) -> None:
        self.gb, self.seconds = gb, seconds

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        hog = bytearray(int(self.gb * 2**30))
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(self.seconds)


class Fault(PauseMidEpoch):
    """One fault per sweep job, chosen by ``kind`` (a single key to sweep over), for the SLURM tests.

    ``none``; ``raise`` (an exception in training); ``exit0`` (the process ends at once with exit code 0, no
    result); ``oom`` (``gb`` GiB held: over the job's memory limit); ``pause-<moment>``: write ``marker`` (the SLURM
    job id, the node) and wait up to ``seconds`` for a signal, once: ``start`` (built before Lightning starts),
    ``sanity``, ``fit`` (epoch 1), ``validate`` (epoch 1), ``test``. A requeued job finds ``marker`` and goes on.
    """

    def __init__(self, kind: str = "none", marker: str = "", seconds: float = 150.0, gb: float = 3.0) -> None:
        self.kind, self.marker, self.seconds, self.gb = kind, Path(marker), seconds, gb
        if kind == "pause-start":
            self._wait()

    def _wait(self) -> None:
        if self.marker.exists():
            return
        self.marker.write_text(f"{slurm_job_id()} {os.environ.get('SLURMD_NODENAME', '')}")
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not signals.received():  # Lightning stops at the next batch
            time.sleep(0.1)

    def _pause(self, trainer: L.Trainer, stage: str, batch_idx: int) -> None:
        moment = "fit" if stage == "train" else stage
        if self.kind == f"pause-{moment}" and batch_idx == 0 and (moment in ("sanity", "test")
                                                                  or trainer.current_epoch == 1):
            self._wait()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.kind == "raise":
            raise Crash("a fault in training")
        if self.kind == "exit0":
            os._exit(0)
        if self.kind == "oom":
            HogMemory(self.gb, self.seconds).on_train_start(trainer, pl_module)
