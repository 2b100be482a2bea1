"""Test-set confusion matrix of a classifier, written into the run directory and sent to W&B."""

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torchmetrics.classification import MulticlassConfusionMatrix

log = logging.getLogger(__name__)


class ConfusionMatrix(L.Callback):
    """Counts (true class, predicted class) over the test set, reduced across processes.

    Writes ``<dirpath>/confusion_matrix.csv`` (rows: true class, columns: predicted class) and
    ``confusion_matrix.png`` on rank zero, and logs the image as ``test/confusion_matrix`` to W&B when a
    ``WandbLogger`` is in use. Modules without ``hparams.num_classes`` (not classifiers) are skipped.

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
        self.metric = None
        if not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with (self.dirpath / "confusion_matrix.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true\\pred", *range(len(matrix))])
            writer.writerows([i, *row] for i, row in enumerate(matrix.tolist()))
        png = self.dirpath / "confusion_matrix.png"
        _plot(matrix, png)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("test/confusion_matrix", [str(png)])
        log.info("Confusion matrix written to %s", png)


def _plot(matrix: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(matrix)
    fig, ax = plt.subplots(figsize=(0.5 * n + 2, 0.5 * n + 1.5))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set(xlabel="predicted class", ylabel="true class", xticks=range(n), yticks=range(n),
           title="Test confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
