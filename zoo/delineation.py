"""Training in rounds for the delineation GCN: each round's output scores become the next round's input."""

import csv
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from zoo.tasks import STAGES, NodeClassifier, Stage

log = logging.getLogger(__name__)


class DelineationClassifier(NodeClassifier):
    """Node classification with the seed notebook's rounds (needs a :class:`~zoo.delineation_gcn.DelineationGCN`).

    Like the seed, each stage keeps its own track of input scores: stage ``s``'s forward pass reads track ``s``
    and only the ``s`` nodes take the network's output (the seed's masking: the training pass updates the
    training rows, the validation pass the validation rows). In round 0 every track is the projected node features;
    at the end of a round each track takes the stage's output, the layers restart from ``W1 = I, W2 = 0`` and the
    optimizer state is cleared (see :class:`DelineationRounds`). The tracks and the round number are module
    buffers, so checkpoints and resuming carry them.

    Differences from the seed, on purpose: the loss covers the training nodes only (the seed's cross-entropy also
    counted the unchanged non-training rows, a constant that only rescales the gradient); a round's next input is
    the output of the round's final weights (the seed kept the lowest-loss epoch's output, with its tiny learning
    rate the same up to noise).

    Args:
        net: A ``DelineationGCN``.
        optimizer: Optimizer factory (a Hydra ``_partial_``).
        num_classes: Number of classes.
        epochs_per_round: Training epochs of one round.
        max_rounds: Most rounds to run.
        tol: A round must lower the lowest training loss by more than ``tol`` to start another one.
        scheduler: Optional LR-scheduler factory.
        scheduler_monitor: Metric a ``ReduceLROnPlateau`` scheduler watches.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        epochs_per_round: int = 1000,
        max_rounds: int = 10,
        tol: float = 0.0,
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val/loss",
    ) -> None:
        super().__init__(net, optimizer, num_classes, scheduler, scheduler_monitor)
        if not hasattr(net, "scores") or not hasattr(net, "reset_layers"):
            raise TypeError(f"DelineationClassifier needs a DelineationGCN-like net, got {type(net).__name__}.")
        for stage in STAGES:  # empty until the first round ends: round 0 reads the node features
            self.register_buffer(f"track_{stage}", torch.empty(0))
        self.register_buffer("round", torch.zeros((), dtype=torch.long))
        self.register_buffer("prev_round_loss", torch.tensor(math.inf))
        self.register_buffer("round_loss", torch.tensor(math.inf))

    def track(self, stage: Stage) -> torch.Tensor:
        return getattr(self, f"track_{stage}")

    def scores(self, data: Any, stage: Stage) -> torch.Tensor:
        """All nodes' scores ``[N, C]`` of ``stage``'s pass (its nodes updated, the others as in its track)."""
        first = self.track(stage).numel() == 0
        x = data.x if first else self.track(stage)
        return self.net.scores(x, data.edge_index, data.get("edge_weight"), data[f"{stage}_mask"], project=first)

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        if stage == "predict":  # each node from the pass of its own stage
            logits = torch.zeros(batch.num_nodes, self.hparams.num_classes, device=batch.y.device)
            for s in STAGES:
                mask = batch[f"{s}_mask"]
                logits[mask] = self.forward_batch(batch, s)[0]
            return logits, batch.y
        first = self.track(stage).numel() == 0
        x = batch.x if first else self.track(stage)
        mask = batch[f"{stage}_mask"]
        logits = self.net(x, batch.edge_index, batch.get("edge_weight"), update_mask=mask, project=first)
        return logits[mask], batch.y[mask]

    @torch.no_grad()
    def next_round(self, data: Any) -> None:
        """Every stage's scores become its next input; the layers restart from ``W1 = I, W2 = 0``."""
        was_training = self.training
        self.eval()
        tracks = {s: self.scores(data, s) for s in STAGES}
        for s, t in tracks.items():
            setattr(self, f"track_{s}", t.detach().clone())
        self.train(was_training)
        self.net.reset_layers("zeros")
        self.round += 1
        self.prev_round_loss.copy_(self.round_loss)
        self.round_loss.fill_(math.inf)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # The tracks' shapes are only known after round 0: size the empty buffers before the state is loaded.
        state = checkpoint.get("state_dict", {})
        for s in STAGES:
            saved = state.get(f"track_{s}")
            if saved is not None:
                setattr(self, f"track_{s}", torch.empty_like(saved, device=self.track(s).device))

    def configure_callbacks(self) -> list[Callback]:
        return [DelineationRounds(self.hparams.epochs_per_round, self.hparams.max_rounds, self.hparams.tol)]


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
        needed = self.epochs_per_round * self.max_rounds
        if not trainer.fast_dev_run and trainer.max_epochs not in (None, -1) and trainer.max_epochs < needed:
            log.warning(
                "trainer.max_epochs=%d allows %d of the %d rounds (model.epochs_per_round=%d): set trainer.max_epochs="
                "-1 to let the rounds decide.", trainer.max_epochs, trainer.max_epochs // self.epochs_per_round,
                self.max_rounds, self.epochs_per_round,
            )

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batch = batch  # full batch: the graph
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        pl_module.round_loss.fill_(min(float(pl_module.round_loss), float(loss)))

    @torch.no_grad()
    def accuracies(self, pl_module: DelineationClassifier) -> dict[str, float]:
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
