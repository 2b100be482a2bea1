"""LightningModules shared by every network: one ``step(batch, stage)`` for train, val and test."""

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

Stage = str  # "train" | "val" | "test"
STAGES: tuple[Stage, ...] = ("train", "val", "test")


class Classifier(L.LightningModule):
    """Cross-entropy classification of ``(x, y)`` batches with any ``nn.Module`` that returns logits.

    Args:
        net: Network mapping inputs to logits ``[B, num_classes]``.
        optimizer: Optimizer factory (a Hydra ``_partial_``) called with the parameters.
        num_classes: Number of classes (for the accuracy metrics).
        scheduler: Optional LR-scheduler factory (a Hydra ``_partial_``) called with the optimizer.
        scheduler_monitor: Metric a ``ReduceLROnPlateau`` scheduler watches.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "val/loss",
    ) -> None:
        super().__init__()
        # Modules and optimizer factories stay out of the checkpoint's hyperparameters (they would need
        # unsafe unpickling); the run directory's .hydra/config.yaml rebuilds them.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.net = net
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # Keys are "<stage>_acc": a ModuleDict key "train" would clash with nn.Module.train.
        self.accuracy = nn.ModuleDict(
            {f"{s}_acc": MulticlassAccuracy(num_classes, average="micro") for s in STAGES}
        )
        self.val_acc_best = MaxMetric()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of inputs (softmax only in :meth:`predict_step`)."""
        return self.net(x)

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and targets of one batch; subclasses override this for other batch layouts."""
        x, y = batch
        return self(x), y

    def step(self, batch: Any, stage: Stage) -> torch.Tensor:
        """Loss and accuracy of one batch, logged as ``<stage>/loss`` and ``<stage>/acc``."""
        logits, y = self.forward_batch(batch, stage)
        loss = F.cross_entropy(logits, y)
        acc = self.accuracy[f"{stage}_acc"]
        acc(logits.detach(), y)
        n = y.shape[0]
        self.log(f"{stage}/loss", loss.detach(), on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, batch_size=n, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.accuracy["val_acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def on_train_start(self) -> None:
        # The sanity check must not count towards the best validation accuracy.
        self.val_acc_best.reset()

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        logits, _ = self.forward_batch(batch, "predict")
        return logits.softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor, "interval": "epoch"},
        }


class NodeClassifier(Classifier):
    """Full-batch node classification on a PyG ``Data`` with ``train_mask``/``val_mask``/``test_mask``.

    Graph networks (``uses_edges = True``) get ``(x, edge_index, edge_weight)``; other networks
    (MLP, logistic regression) see the node features alone, as a no-graph baseline.
    """

    def forward(self, data: Any) -> torch.Tensor:  # type: ignore[override]
        if getattr(self.net, "uses_edges", False):
            return self.net(data.x, data.edge_index, data.get("edge_weight"))
        return self.net(data.x)

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)  # [N, num_classes]: every node, every stage
        if stage == "predict":
            return logits, batch.y
        mask = batch[f"{stage}_mask"]
        return logits[mask], batch.y[mask]
