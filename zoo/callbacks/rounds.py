"""Rounds of the delineation GCN: end a round every few epochs, stop when the training loss stops falling."""

import csv
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from zoo.tasks.classifier import STAGES

if TYPE_CHECKING:
    from zoo.tasks.delineation import DelineationClassifier

log = logging.getLogger(__name__)


class DelineationRounds(Callback):
    """Ends a round every ``epochs_per_round`` epochs and stops when the training loss stops falling.

    At a round's end it logs ``round/{train,val,test}_acc`` and ``round/loss`` (the round's lowest training loss),
    appends them to ``<run dir>/rounds.csv``, then either starts the next round (``next_round``, optimizer state
    cleared) or stops training: after ``max_rounds`` rounds, or when the round lowered the loss by ``tol`` or less.
    The trainer's ``max_epochs`` still caps the run (``-1``: the rounds decide alone).
    """

    def __init__(self, epochs_per_round: int, max_rounds: int, tol: float = 0.0) -> None:
        if epochs_per_round < 1 or max_rounds < 1:
            raise ValueError(f"epochs_per_round and max_rounds must be >= 1, got {epochs_per_round}, {max_rounds}.")
        self.epochs_per_round, self.max_rounds, self.tol = epochs_per_round, max_rounds, tol
        self.history: list[dict[str, float]] = []
        self._batch: Any = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        needed = self.epochs_per_round * self.max_rounds  # Lightning epochs (each of steps_per_epoch steps)
        if not trainer.fast_dev_run and trainer.max_epochs not in (None, -1) and trainer.max_epochs < needed:
            log.warning(
                "trainer.max_epochs=%d allows %d of the %d rounds (model.epochs_per_round=%d): set trainer.max_epochs="
                "-1 to let the rounds decide.", trainer.max_epochs, trainer.max_epochs // self.epochs_per_round,
                self.max_rounds, self.epochs_per_round,
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch = batch  # full batch: the graph (the task's training_step keeps the round's lowest loss)

    @torch.no_grad()
    def accuracies(self, pl_module: "DelineationClassifier") -> dict[str, float]:
        was_training = pl_module.training
        pl_module.eval()
        accs = {}
        for s in STAGES:
            logits, y = pl_module.forward_batch(self._batch, s)
            accs[f"round/{s}_acc"] = float((logits.argmax(1) == y).float().mean()) if len(y) else math.nan
        pl_module.train(was_training)
        return accs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._batch is None or (trainer.current_epoch + 1) % self.epochs_per_round:
            return
        row = {"round": float(pl_module.round), "epoch": float(trainer.current_epoch),
               "round/loss": float(pl_module.round_loss), **self.accuracies(pl_module)}
        self.history.append(row)
        for k, v in row.items():
            if k.startswith("round/"):
                pl_module.log(k, v, on_epoch=True, batch_size=1)
        if trainer.is_global_zero:
            self.write(Path(trainer.default_root_dir) / "rounds.csv")
        log.info("round %d: %s", int(row["round"]), ", ".join(f"{k}={v:.4f}" for k, v in row.items() if "/" in k))
        improvement = float(pl_module.prev_round_loss) - float(pl_module.round_loss)
        if int(pl_module.round) + 1 >= self.max_rounds or not improvement > self.tol:
            trainer.should_stop = True
            return
        pl_module.next_round(self._batch)
        for optimizer in trainer.optimizers:  # a fresh optimizer for the fresh layers
            optimizer.state.clear()

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
