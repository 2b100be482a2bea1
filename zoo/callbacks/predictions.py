"""Per-node test predictions of a graph run, for paired per-node comparisons (``python -m zoo.report``)."""

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from zoo.files import PREDICTIONS_FILE

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class NodePredictions(Callback):
    """After testing on one graph (a DataModule with ``data`` and ``test_mask``), writes ``predictions.csv``: one
    row per node with ``node`` (its index, or its ZIP code), ``split`` (train, val, test, or empty), ``label`` and
    ``prediction`` (class names) and ``correct``. Runs that write their own (:class:`~zoo.callbacks.nyc_outputs.NYCOutputs`) are left to it.

    Args:
        dirpath: Folder to write into (the run directory); default: the trainer's ``default_root_dir``.
    """

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath

    @torch.no_grad()
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        data = getattr(trainer.datamodule, "data", None)
        if data is None:
            return  # image data: nothing to write (and pandas stays unimported)
        import pandas as pd

        from zoo.callbacks.nyc_outputs import NYCOutputs

        if (data is None or "test_mask" not in data or not trainer.is_global_zero or trainer.fast_dev_run
                or any(isinstance(c, NYCOutputs) for c in trainer.callbacks)):
            return
        was_training = pl_module.training
        pl_module.eval()
        logits, y = pl_module.forward_batch(data.to(pl_module.device), "predict")
        pl_module.train(was_training)
        pred, y = logits.argmax(1).cpu().numpy(), y.cpu().numpy()
        split = pd.Series([""] * len(y), dtype=object)
        for s in SPLITS:
            split[data[f"{s}_mask"].cpu().numpy()] = s
        # Node ids and class names as the data's own outputs write them (a ZIP code, a borough), so runs pair up.
        nodes = data.zip.cpu().numpy() if "zip" in data else np.arange(len(y))
        names = np.asarray(getattr(trainer.datamodule, "class_names", None) or [str(c) for c in range(logits.size(1))])
        table = pd.DataFrame({"node": nodes, "split": split, "label": names[y], "prediction": names[pred],
                              "correct": pred == y})
        out = Path(self.dirpath or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / PREDICTIONS_FILE, index=False)
        log.info("Per-node predictions written to %s", out / PREDICTIONS_FILE)
