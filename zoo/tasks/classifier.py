"""The task shared by every network: one ``step(batch, stage)`` for train, val and test."""

import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric

import zoo.checks as checks
from zoo.errors import ConfigError
from zoo.tasks.epoch_metrics import LossAccuracy
from zoo.tasks.rng_state import get_rng_state, set_rng_state

Stage = str  # "train" | "val" | "test"
STAGES: tuple[Stage, ...] = ("train", "val", "test")
# Keywords of the optimizer and scheduler factories (Hydra partials) checked by the task: (lowest, open).
FACTORY_RANGES: dict[str, tuple[float, bool]] = {"lr": (0, True), "max_lr": (0, True), "weight_decay": (0, False),
                                                 "momentum": (0, False)}


def check_factory(name: str, factory: Any) -> None:
    """Check the keywords a factory (a ``functools.partial``) binds against FACTORY_RANGES: ``optimizer.lr`` must be
    > 0 (0 trains nothing), ``weight_decay`` and ``momentum`` >= 0."""
    for key, value in (getattr(factory, "keywords", None) or {}).items():
        if key in FACTORY_RANGES:
            low, open_low = FACTORY_RANGES[key]
            checks.number(f"{name}.{key}", value, low, open_low=open_low)


def net_class(module: torch.nn.Module) -> str:
    """Import path of a network's class, e.g. ``zoo.nets.mlp.MLP``."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


class Classifier(L.LightningModule):
    """Cross-entropy classification of ``(x, y)`` batches with any ``nn.Module`` that returns logits.

    Args:
        net: Network mapping inputs to logits ``[B, num_classes]``.
        optimizer: Optimizer factory (a Hydra ``_partial_``) called with the parameters.
        num_classes: Number of classes (kept in the hyperparameters).
        scheduler: Optional LR-scheduler factory (a Hydra ``_partial_``) called with the optimizer.
        scheduler_monitor: Metric a ``ReduceLROnPlateau`` scheduler watches.
        scheduler_interval: ``epoch`` or ``step`` (per optimizer step, e.g. ``OneCycleLR``); a step-wise
            factory that takes ``total_steps`` gets ``trainer.estimated_stepping_batches``.
        label_smoothing: Label smoothing of the training loss (validation and test losses are plain
            cross-entropy, comparable across runs).

    Raises:
        ValueError: A setting out of range, e.g. ``optimizer.lr=-0.1: must be > 0``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val/loss",
        scheduler_interval: str = "epoch",
        label_smoothing: float = 0.0,
    ) -> None:
        checks.integer("num_classes", num_classes)
        check_factory("optimizer", optimizer)
        check_factory("scheduler", scheduler)
        checks.choice("scheduler_interval", scheduler_interval, ("epoch", "step"))
        checks.fraction("label_smoothing", label_smoothing)
        super().__init__()
        # Modules and optimizer factories stay out of the checkpoint's hyperparameters (they would need
        # unsafe unpickling); the run directory's .hydra/config.yaml rebuilds them.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # Epoch loss and accuracy per stage, updated every step and logged once per epoch (see
        # `log_epoch_metrics`). Keys are "<stage>_metrics": a ModuleDict key "train" would clash with
        # nn.Module.train. Cheap updates: no per-batch input validation (cross_entropy already rejects bad
        # targets) and no NaN checks (each would wait for the device; FiniteLossCheck watches the training loss).
        self.epoch_metrics = nn.ModuleDict({f"{s}_metrics": LossAccuracy() for s in STAGES})
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints: a resumed run knows its best epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of inputs (softmax only in :meth:`predict_step`)."""
        return self.net(x)

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and targets of one batch; subclasses override this for other batch layouts."""
        x, y = batch
        return self(x), y

    def step(self, batch: Any, stage: Stage) -> torch.Tensor:
        """Loss of one batch; its loss and accuracy also go into ``stage``'s epoch metrics."""
        logits, y = self.forward_batch(batch, stage)
        smoothing = self.hparams.get("label_smoothing", 0.0) if stage == "train" else 0.0
        losses = F.cross_entropy(logits, y, reduction="none", label_smoothing=smoothing)  # [B]
        # `update`, not `__call__`: no per-batch value is computed, and no `self.log` per step (Lightning's
        # bookkeeping of a logged value costs ~1 ms a call on a CPU, as much as a small model's whole step).
        # Every sample's loss goes in, so the epoch loss is the mean over samples, uneven last batch included.
        self.epoch_metrics[f"{stage}_metrics"].update(losses, logits, y)
        return losses.mean()

    def log_epoch_metrics(self, stage: Stage) -> dict[str, torch.Tensor]:
        """Log ``<stage>/loss`` (sample-weighted mean) and ``<stage>/acc`` of the epoch, reset them, return them.

        torchmetrics' ``compute`` gathers the states of every DDP process, so the values are already global
        (``sync_dist`` then averages equal values; it only keeps Lightning from warning).
        """
        metric = self.epoch_metrics[f"{stage}_metrics"]
        if metric.update_count == 0:  # no batch ran in this stage (e.g. limit_val_batches=0)
            return {}
        loss, acc = metric.compute()
        values = {f"{stage}/loss": loss, f"{stage}/acc": acc}
        self.reset_epoch_metrics(stage)
        self.log(f"{stage}/loss", values[f"{stage}/loss"], sync_dist=True)
        self.log(f"{stage}/acc", values[f"{stage}/acc"], prog_bar=stage != "train", sync_dist=True)
        return values

    def reset_epoch_metrics(self, stage: Stage) -> None:
        self.epoch_metrics[f"{stage}_metrics"].reset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "test")

    def on_fit_start(self) -> None:
        self.check_input("train")

    def on_test_start(self) -> None:
        self.check_input("test")

    def check_input(self, split: str) -> None:
        """Run the network once on two examples of the data (eval mode, no gradient, no state changed).

        A network that cannot take the data's inputs (another image size, a flattened width it was not built for)
        then fails before training with a message naming the shapes, not with a traceback in the first step.
        Batches that are not ``(x, y)`` tensors (full graphs) are checked by their datamodule instead.
        """
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is None:
            return
        batch = next(iter(getattr(datamodule, f"{split}_dataloader")()), None)
        if not (isinstance(batch, tuple | list) and len(batch) == 2 and isinstance(batch[0], torch.Tensor)):
            return
        x = batch[0][:2].to(self.device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                logits = self(x)
        except RuntimeError as err:
            raise ConfigError(
                f"model.net ({net_class(self.net)}) cannot take the data's inputs: a batch of shape {list(x.shape)[1:]} "
                f"per example fails with: {str(err).splitlines()[0]}. Fix: configure model.net for inputs of this size "
                f"(its in_features/height/width, fewer pooling layers), or use data of the size it expects."
            ) from err
        finally:
            self.train(was_training)
        num_classes = self.hparams.get("num_classes")
        if logits.dim() != 2 or (num_classes is not None and logits.shape[1] != num_classes):
            raise ConfigError(f"model.net ({net_class(self.net)}) returns outputs of shape {list(logits.shape)} for 2 "
                              f"examples; expected [2, {num_classes}] (one logit per class): check model.net's "
                              f"num_classes.")

    def on_train_epoch_end(self) -> None:
        self.log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # the sanity check counts neither in the epoch nor in the best accuracy
            self.reset_epoch_metrics("val")
            return
        values = self.log_epoch_metrics("val")
        if values:
            self.val_acc_best(values["val/acc"])
            self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        self.log_epoch_metrics("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Which network wrote it (checked before resuming/testing), and the global RNG state that dropout
        # draws from (Lightning does not restore it), so a resumed run repeats an uninterrupted one.
        checkpoint["zoo"] = {"net": net_class(self.net), "rng": get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = (checkpoint.get("zoo") or {}).get("rng")
        if rng is not None and self._trainer is not None and self.trainer.state.fn == "fit":
            set_rng_state(rng)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits, _ = self.forward_batch(batch, "predict")
        return logits.softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        # A network with its own optimizer settings per part (e.g. GCNII's weight decays) exposes param_groups().
        param_groups = getattr(self.net, "param_groups", None)
        optimizer = self.optimizer_factory(params=param_groups() if callable(param_groups) else self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        interval = self.hparams.get("scheduler_interval", "epoch")
        extra = {}
        if interval == "step" and "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            extra["total_steps"] = self.trainer.estimated_stepping_batches
        scheduler = self.scheduler_factory(optimizer=optimizer, **extra)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor, "interval": interval},
        }
