"""Save a matplotlib figure as a PNG in the run directory and send it to the loggers that take images."""

import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


def publish_figure(trainer: L.Trainer, fig: Any, path: Path, key: str, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (PNG), log that image as ``key`` to W&B (``log_image``) and TensorBoard
    (``add_image``), then close it. Call on rank zero. The PNG grows to hold every label whole (long class names)."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # labels too long for a constrained layout: the tight box still holds them
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [str(path)])
        elif isinstance(logger, TensorBoardLogger):  # the PNG as written (add_figure would redraw it untrimmed)
            logger.experiment.add_image(key, plt.imread(path), global_step=trainer.global_step, dataformats="HWC")
    plt.close(fig)
    return path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (imported when a figure is drawn, not at start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
