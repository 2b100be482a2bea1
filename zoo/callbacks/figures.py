"""Save a matplotlib figure as a PNG in the run directory and send it to the loggers that take images."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger


def publish_figure(trainer: L.Trainer, fig: Any, path: Path, key: str, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (PNG), log it as ``key`` to W&B (``log_image``) and TensorBoard (``add_figure``),
    then close it. Call on rank zero."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [str(path)])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(key, fig, global_step=trainer.global_step, close=False)
    plt.close(fig)
    return path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (imported when a figure is drawn, not at start-up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
