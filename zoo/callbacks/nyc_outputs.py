"""What a user of the NYC ZIP data wants from a run: a predictions table and a map of the predicted boroughs."""

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from zoo.callbacks.figures import publish_figure, pyplot
from zoo.files import PREDICTIONS_FILE

log = logging.getLogger(__name__)


def predictions_table(data: Any, probs: torch.Tensor, class_names: tuple[str, ...]) -> pd.DataFrame:
    """One row per node: ZIP, split, true and predicted borough, and each borough's probability."""
    split = np.full(data.num_nodes, "", dtype=object)
    for s in ("train", "val", "test"):
        split[data[f"{s}_mask"].cpu().numpy()] = s
    pred = probs.argmax(1).cpu().numpy()
    y = data.y.cpu().numpy()
    table = pd.DataFrame({
        "zip": data.zip.cpu().numpy(),
        "split": split,
        "true_borough": [class_names[i] for i in y],
        "predicted_borough": [class_names[i] for i in pred],
        "correct": pred == y,
    })
    for i, name in enumerate(class_names):
        table[f"p_{name.lower().replace(' ', '_')}"] = probs[:, i].cpu().numpy().round(6)
    return table


def plot_map(table: pd.DataFrame, shapefile: Path, class_names: tuple[str, ...]) -> Any | None:
    """Figure of the ZIPs coloured by predicted borough, wrong ZIPs outlined in black; ``None`` if it cannot be drawn."""
    try:
        import geopandas as gpd
        from matplotlib.patches import Patch
    except ImportError as err:
        warnings.warn(f"No map: {err}. Install the maps extra (pip install 'zoo[maps]').", stacklevel=2)
        return None
    if not shapefile.is_file():
        warnings.warn(f"No map: the ZIP shapefile {shapefile} is missing (it is downloaded with the CSVs, or copy "
                      f"ZIP_CODE_040114.* there).", stacklevel=2)
        return None
    shapes = gpd.read_file(shapefile)[["ZIPCODE", "geometry"]]
    shapes["zip"] = pd.to_numeric(shapes["ZIPCODE"], errors="coerce")
    shapes = shapes.merge(table, on="zip", how="left")
    colours = dict(zip(class_names, ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00"), strict=False))
    fig, ax = pyplot().subplots(figsize=(9, 9))
    known = shapes["predicted_borough"].notna()
    shapes[~known].plot(ax=ax, color="#dddddd", edgecolor="white", linewidth=0.3)
    shapes[known].plot(ax=ax, color=shapes.loc[known, "predicted_borough"].map(colours), edgecolor="white",
                       linewidth=0.3)
    wrong = known & (shapes["correct"] == False)  # noqa: E712 (object column)
    if wrong.any():
        shapes[wrong].boundary.plot(ax=ax, color="black", linewidth=1.8)
    handles = [Patch(color=c, label=n) for n, c in colours.items()]
    handles += [Patch(facecolor="none", edgecolor="black", linewidth=1.8, label="wrong"),
                Patch(color="#dddddd", label="not in the graph")]
    ax.legend(handles=handles, loc="upper left")
    n_test = int((table.split == "test").sum())
    acc = table.loc[table.split == "test", "correct"].mean() if n_test else float("nan")
    ax.set_title(f"Predicted borough per ZIP ({int((~table.correct).sum())} wrong of {len(table)}; "
                 f"test accuracy {acc:.3f} on {n_test} ZIPs)")
    ax.set_axis_off()
    fig.tight_layout()
    return fig


class NYCOutputs(Callback):
    """After testing, writes ``predictions.csv`` and ``predictions_map.png`` into the run directory.

    The map needs geopandas and the ZIP shapefile next to the CSVs; without them, or when drawing it fails (a
    truncated shapefile), it is skipped with a warning and the run goes on.
    The PNG is also sent to every logger that takes images (TensorBoard, Weights & Biases).

    Args:
        output_dir: Folder to write into (the run directory); default: the trainer's ``default_root_dir``.
        map: Draw the map.
    """

    def __init__(self, output_dir: str | None = None, map: bool = True) -> None:
        self.output_dir, self.map = output_dir, map

    @torch.no_grad()
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        data = getattr(dm, "data", None)
        if data is None or "zip" not in data or not trainer.is_global_zero or trainer.fast_dev_run:
            return
        was_training = pl_module.training
        pl_module.eval()
        logits, _ = pl_module.forward_batch(data.to(pl_module.device), "predict")
        pl_module.train(was_training)
        probs = logits.softmax(dim=-1)
        out = Path(self.output_dir or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        class_names = tuple(getattr(dm, "class_names", [str(i) for i in range(probs.size(1))]))
        table = predictions_table(data, probs, class_names)
        table.to_csv(out / PREDICTIONS_FILE, index=False)
        log.info("Predictions written to %s", out / PREDICTIONS_FILE)
        if not self.map:
            return
        shapefile = Path(getattr(dm, "shapefile", ""))
        try:
            fig = plot_map(table, shapefile, class_names)
            if fig is not None:
                png = publish_figure(trainer, fig, out / "predictions_map.png", "predictions_map", dpi=120)
                log.info("Map written to %s", png)
        except Exception as err:  # noqa: BLE001 - the map is optional: it never costs the run its results
            reason = next(iter(str(err).splitlines()), "")  # one line
            log.warning("No map: drawing it from %s failed (%s: %s); %s was still written.", shapefile,
                        type(err).__name__, reason, out / PREDICTIONS_FILE)
