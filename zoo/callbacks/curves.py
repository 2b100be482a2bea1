"""Training curves: loss and accuracy per epoch, train and val, as a PNG in the run directory and in the loggers."""

import logging
from pathlib import Path
from typing import Any

import lightning as L

from zoo.callbacks.figures import publish_figure, pyplot

log = logging.getLogger(__name__)

METRICS = ("loss", "acc")
STAGES = ("train", "val")


class TrainingCurves(L.Callback):
    """Records ``train/{loss,acc}`` and ``val/{loss,acc}`` of every epoch and plots them when fitting ends.

    Writes ``<dirpath>/training_curves.png`` on rank zero and logs it as ``training_curves`` to W&B and
    TensorBoard. The history is kept in checkpoints, so a resumed run plots the epochs before it too (all but
    the train point of the epoch it resumed after, which is read only when the next epoch starts).

    Args:
        dirpath: Folder to write the PNG into (the run directory).
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.history: dict[str, dict[int, float]] = {f"{s}/{m}": {} for s in STAGES for m in METRICS}

    def _record(self, trainer: L.Trainer, stage: str, epoch: int) -> None:
        for metric in METRICS:
            value = trainer.callback_metrics.get(f"{stage}/{metric}")
            if value is not None and epoch >= 0:
                self.history[f"{stage}/{metric}"][epoch] = float(value)

    # Tasks log their epoch metrics in their own on_*_epoch_end, which Lightning calls after the callbacks'
    # hooks of the same name: val values are read when validation ends, train values when the next epoch
    # (or the fit) starts its next step.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, "val", trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "train", trainer.current_epoch - 1)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, "train", trainer.current_epoch - 1)
        if trainer.is_global_zero and not trainer.fast_dev_run and any(self.history.values()):
            png = publish_figure(trainer, self.plot(), self.dirpath / "training_curves.png", "training_curves")
            log.info("Training curves written to %s", png)

    def plot(self) -> Any:
        """The figure: one panel per metric, a line per stage, epochs on the x axis.

        Each epoch is a marker, so that a single epoch shows as a point; the epoch axis has whole-number ticks and
        half an epoch of room at either end (one epoch: one tick, 0, not ticks from -0.06 to 0.06).
        """
        from matplotlib.ticker import MaxNLocator

        epochs = sorted({epoch for points in self.history.values() for epoch in points}) or [0]
        fig, axes = pyplot().subplots(1, len(METRICS), figsize=(10, 4), constrained_layout=True)
        for ax, metric in zip(axes, METRICS, strict=True):
            for stage in STAGES:
                points = sorted(self.history[f"{stage}/{metric}"].items())
                if points:
                    ax.plot(*zip(*points, strict=True), marker="o", label=stage)
            ax.set(xlabel="epoch", ylabel=metric, title=metric, xlim=(epochs[0] - 0.5, epochs[-1] + 0.5))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.grid(alpha=0.3)
            ax.legend()
        return fig

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = state_dict["history"]
