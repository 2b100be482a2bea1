"""Test-set confusion matrix of a classifier, written into the run directory and sent to W&B and TensorBoard."""

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from zoo.callbacks.figures import publish_figure, pyplot

log = logging.getLogger(__name__)


class ConfusionMatrix(L.Callback):
    """Counts (true class, predicted class) over the test set, reduced across processes.

    Writes ``<dirpath>/confusion_matrix.csv`` (rows: true class, columns: predicted class, named by the
    DataModule's ``class_names``) and ``confusion_matrix.png`` (counts in the cells) on rank zero, and logs the
    image as ``test/confusion_matrix`` to W&B and TensorBoard. Modules without ``hparams.num_classes`` (not
    classifiers) are skipped.

    Args:
        dirpath: Folder to write the files into (the run directory).
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.metric: MulticlassConfusionMatrix | None = None

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        num_classes = pl_module.hparams.get("num_classes")
        self.metric = MulticlassConfusionMatrix(num_classes).to(pl_module.device) if num_classes else None

    @torch.no_grad()
    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.metric is not None:
            logits, y = pl_module.forward_batch(batch, "test")  # [B, C], [B]
            self.metric.update(logits.argmax(dim=-1), y)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.metric is None:
            return
        matrix = self.metric.compute().cpu()  # every rank takes part in the reduction
        metric, self.metric = self.metric, None
        if not trainer.is_global_zero:
            return
        names = list(getattr(trainer.datamodule, "class_names", None) or [])
        names = names if len(names) == len(matrix) else list(range(len(matrix)))
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with (self.dirpath / "confusion_matrix.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true\\pred", *names])
            writer.writerows([name, *row] for name, row in zip(names, matrix.tolist(), strict=True))
        n = len(matrix)
        fig, ax = pyplot().subplots(figsize=(0.7 * n + 3, 0.7 * n + 2.5), constrained_layout=True)
        metric.plot(val=matrix, ax=ax, labels=[str(name) for name in names], cmap="Blues")  # counts in the cells
        ax.set_title("Test confusion matrix")
        png = publish_figure(trainer, fig, self.dirpath / "confusion_matrix.png", "test/confusion_matrix")
        log.info("Confusion matrix written to %s", png)
