"""Training in rounds for the delineation GCN: each round's output scores become the next round's input.

The task (:class:`DelineationClassifier`) and the callback that ends its rounds (:class:`DelineationRounds`, which
the task adds itself through ``configure_callbacks``) live together: each needs the other.
"""

import csv
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

import zoo.checks as checks
from zoo.errors import NonFiniteLossError
from zoo.tasks.classifier import STAGES, Stage
from zoo.tasks.node_classifier import NodeClassifier

log = logging.getLogger(__name__)


class DelineationClassifier(NodeClassifier):
    """Node classification with the seed notebook's rounds (needs a :class:`~zoo.nets.delineation_gcn.DelineationGCN`).

    **Epochs, steps and rounds.** One Lightning epoch runs ``steps_per_epoch`` optimisation steps on the full
    graph (the notebook's "epochs"; several per Lightning epoch because Lightning's per-epoch bookkeeping costs
    more than a step of this small model). A round is ``epochs_per_round`` Lightning epochs; ``trainer.max_epochs``
    counts Lightning epochs, and the epoch metrics (``train/*``, ``val/*``) and checkpoints are per Lightning
    epoch, so with ``epochs_per_round=1`` validation, checkpoints and model selection are per round.

    **Tracks (the seed's masking).** Each stage keeps its own track of input scores: stage ``s``'s pass reads
    track ``s`` and only the ``s`` nodes take the network's output (the training pass updates the training rows,
    the validation pass the validation rows). In round 0 every track is the projected node features; at the end
    of a round each track takes the stage's output, the layers restart from ``W1 = I, W2 = 0`` and the optimizer
    state is cleared (see :class:`DelineationRounds`). Tracks and round number are buffers: checkpoints carry them.

    **Training labels as input** (``label_input``): every node's output is computed in one pass from one track;
    the operator gathers the one-hot TRAINING labels in the training rows (label propagation's clamping) and the
    current scores elsewhere. Validation and test labels are never read.

    Args:
        net: A ``DelineationGCN``.
        optimizer: Optimizer factory (a Hydra ``_partial_``).
        num_classes: Number of classes.
        epochs_per_round: Lightning epochs of one round.
        steps_per_epoch: Optimisation steps (full-graph passes) of one Lightning epoch.
        max_rounds: Most rounds to run.
        tol: A round must lower the lowest training loss by more than ``tol`` to start another one.
        loss_nodes: ``train`` (cross-entropy over the training nodes) or ``all`` (the seed: over every node, the
            non-training rows being their unchanged inputs; needs all labels, so only for reproducing the seed).
        round_output: A round's model: its final weights (``final``) or the weights of its step with the lowest
            training loss (``lowest_loss``, the seed), restored at the round's end: validation, checkpoints,
            ``rounds.csv`` and the next round's input all use them.
        label_input: Feed the training labels to the operator (see above).
        initial_scores: Round 0's input: ``features`` (the node features, projected if the net does),
            ``uniform`` (``1 / C`` everywhere: the graph and the training labels alone) or ``prior`` (the data's
            label-free prior ``initial_feat`` as one-hot scores, never projected; NYC: the borough of the nearest
            centroid).
        scheduler: Optional LR-scheduler factory (stepped once per Lightning epoch).
        scheduler_monitor: Metric a ``ReduceLROnPlateau`` scheduler watches.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        epochs_per_round: int = 1,
        steps_per_epoch: int = 1,
        max_rounds: int = 10,
        tol: float = 0.0,
        loss_nodes: str = "train",
        round_output: str = "final",
        label_input: bool = False,
        initial_scores: str = "features",
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val/loss",
    ) -> None:
        super().__init__(net, optimizer, num_classes, scheduler, scheduler_monitor)
        if not hasattr(net, "scores") or not hasattr(net, "reset_layers"):
            raise TypeError(f"DelineationClassifier needs a DelineationGCN-like net, got {type(net).__name__}.")
        for key in ("epochs_per_round", "steps_per_epoch", "max_rounds"):
            checks.integer(key, self.hparams[key])
        checks.number("tol", tol)
        choices = {"loss_nodes": ("train", "all"), "round_output": ("final", "lowest_loss"),
                   "initial_scores": ("features", "uniform", "prior")}
        for key, allowed in choices.items():
            checks.choice(key, self.hparams[key], allowed)
        if label_input and loss_nodes == "all":
            raise ValueError("label_input=true with loss_nodes=all would train on the held-out labels: use train.")
        self.automatic_optimization = False  # several optimizer steps per training_step (see steps_per_epoch)
        for stage in STAGES:  # empty until the first round ends: round 0 reads the node features
            self.register_buffer(f"track_{stage}", torch.empty(0))
        self.register_buffer("round", torch.zeros((), dtype=torch.long))
        self.register_buffer("prev_round_loss", torch.tensor(math.inf))
        self.register_buffer("round_loss", torch.tensor(math.inf))
        self._lowest: list[torch.Tensor] = []  # round_output=lowest_loss: the net's weights at the lowest-loss step

    @property
    def resizable_state(self) -> tuple[str, ...]:
        """State-dict keys whose shapes change during training (checkpoint checks compare them by name only)."""
        return tuple(f"track_{s}" for s in STAGES)

    def track(self, stage: Stage) -> torch.Tensor:
        return getattr(self, f"track_{stage}")

    def _inputs(self, data: Any, stage: Stage) -> dict[str, Any]:
        """Keyword arguments of ``net.logits`` for ``stage``'s pass (fixed within a round)."""
        track = self.track("train" if self.hparams.label_input else stage)
        project = track.numel() == 0 and self.hparams.initial_scores == "features"
        if track.numel():
            x = track
        elif self.hparams.initial_scores == "uniform":
            x = torch.full((data.num_nodes, self.hparams.num_classes), 1.0 / self.hparams.num_classes,
                           device=data.y.device)
        elif self.hparams.initial_scores == "prior":
            if "initial_feat" not in data:
                raise ValueError("model.initial_scores=prior reads the data's label-free prior (initial_feat), "
                                 "which this graph lacks: use model.initial_scores=uniform or features.")
            x = F.one_hot(data.initial_feat, self.hparams.num_classes).float()
        else:
            x = data.x
        known, mask = None, data[f"{stage}_mask"]
        if self.hparams.label_input:  # one pass updates every node; training rows send their labels
            labels = F.one_hot(data.y.where(data.train_mask, 0), self.hparams.num_classes).to(x.dtype)
            known, mask = (data.train_mask, labels), None
        return {"x": x, "edge_index": data.edge_index, "edge_weight": data.get("edge_weight"), "update_mask": mask,
                "project": project, "known": known}

    def _pass(self, data: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and scores ``[N, C]`` of all nodes in ``stage``'s pass."""
        return self.net.logits(**self._inputs(data, stage))

    def scores(self, data: Any, stage: Stage) -> torch.Tensor:
        """All nodes' scores ``[N, C]`` of ``stage``'s pass (its nodes updated, the others as in its track)."""
        return self._pass(data, stage)[1]

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        if stage == "predict":  # each node from the pass of its own stage
            logits = torch.zeros(batch.num_nodes, self.hparams.num_classes, device=batch.y.device)
            for s in STAGES:
                mask = batch[f"{s}_mask"]
                logits[mask] = self.forward_batch(batch, s)[0]
            return logits, batch.y
        mask = batch[f"{stage}_mask"]
        logits = self._pass(batch, stage)[0]
        return logits[mask], batch.y[mask]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """``steps_per_epoch`` optimisation steps on the full graph; the epoch metrics get the last step's pass.

        The steps call the torch optimizer directly: Lightning's per-step hooks (``manual_backward``,
        ``LightningOptimizer.step``) cost more than a step of this model. Only the epoch's last step goes through
        ``LightningOptimizer.step``, so that Lightning counts it (``global_step``: checkpoints are saved only when
        it moved). NaN/inf losses are checked here, once per epoch, before anything is validated or saved.
        """
        lightning_optimizer = self.optimizers()
        optimizer = lightning_optimizer.optimizer
        steps = self.hparams.steps_per_epoch
        all_nodes = self.hparams.loss_nodes == "all"
        mask = batch.train_mask
        y = batch.y if all_nodes else batch.y[mask]
        inputs = {**self._inputs(batch, "train"), "rows": None if all_nodes else mask}  # resolved once an epoch
        logits_of = self.net.logits
        round_loss = self.round_loss
        params = list(self.net.parameters())
        keep = self.hparams.round_output == "lowest_loss"
        if keep and not self._lowest:
            self._lowest = [p.detach().clone() for p in params]
        for step in range(steps):
            logits = logits_of(**inputs)[0]  # [N_train, C] (all nodes: [N, C])
            loss = F.cross_entropy(logits, y)
            value = loss.detach()
            if keep:  # the weights of the lowest-loss step (the seed's best_output), without a device read
                better = value < round_loss
                for kept, p in zip(self._lowest, params, strict=True):
                    torch.where(better, p.detach(), kept, out=kept)
            torch.minimum(round_loss, value, out=round_loss)  # a NaN loss stays in the minimum
            optimizer.zero_grad()
            loss.backward()
            (lightning_optimizer if step == steps - 1 else optimizer).step()
        if not bool(torch.isfinite(round_loss) & torch.isfinite(value)):
            raise NonFiniteLossError(
                f"The training loss became NaN or infinite in epoch {self.current_epoch} (round {int(self.round)}). "
                f"Training stopped; the broken weights were not saved. Likely fix: a smaller learning rate "
                f"(model.optimizer.lr)."
            )
        if keep and (self.current_epoch + 1) % self.hparams.epochs_per_round == 0:
            # The round ends: its model is the lowest-loss step's (validation, checkpoint, rounds.csv, next input).
            with torch.no_grad():
                for p, kept in zip(params, self._lowest, strict=True):
                    p.copy_(kept)
        train_logits = logits[mask] if all_nodes else logits
        losses = F.cross_entropy(train_logits, batch.y[mask], reduction="none")  # [N_train]
        self.epoch_metrics["train_metrics"].update(losses, train_logits, batch.y[mask])
        return value

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        scheduler = self.lr_schedulers()
        if scheduler is None:
            return
        if isinstance(scheduler, ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(self.hparams.scheduler_monitor)
            if value is not None:
                scheduler.step(value)
        else:
            scheduler.step()

    @torch.no_grad()
    def next_round(self, data: Any) -> None:
        """Every stage's scores become its next input; the layers restart from ``W1 = I, W2 = 0``."""
        was_training = self.training
        self.eval()
        tracks = {s: self.scores(data, s) for s in STAGES}
        for s, t in tracks.items():
            setattr(self, f"track_{s}", t.detach().clone())
        self._lowest = []
        self.train(was_training)
        self.net.reset_layers("zeros")
        self.round += 1
        self.prev_round_loss.copy_(self.round_loss)
        self.round_loss.fill_(math.inf)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
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
        checks.integer("epochs_per_round", epochs_per_round)
        checks.integer("max_rounds", max_rounds)
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
