"""Training in rounds for the delineation GCN: each round's output scores become the next round's input."""

import math
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from zoo.callbacks.rounds import DelineationRounds
from zoo.tasks.classifier import STAGES, Stage
from zoo.tasks.node_classifier import NodeClassifier


class DelineationClassifier(NodeClassifier):
    """Node classification with the seed notebook's rounds (needs a :class:`~zoo.nets.delineation_gcn.DelineationGCN`).

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
