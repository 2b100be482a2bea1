"""The progress bar of ``configs/callbacks/default.yaml``."""

import logging
import sys

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

log = logging.getLogger(__name__)


def _shown(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bars in a terminal. Where stdout is not a terminal (a file, a pipe, a SLURM log)
    no bar at all: a bar there is a stream of carriage-return refreshes that log lines get glued to. Instead one
    log line per epoch, with the epoch's metrics (``Epoch 3/10: train/loss=0.41, val/acc=0.87, ...``)."""

    @staticmethod
    def _terminal() -> bool:
        return sys.stdout.isatty()

    def _bar_or_nothing(self, make) -> Tqdm:  # noqa: ANN001 - one of Lightning's init_*_tqdm
        return make() if self._terminal() else Tqdm(disable=True)

    def init_sanity_tqdm(self) -> Tqdm:
        return self._bar_or_nothing(super().init_sanity_tqdm)

    def init_train_tqdm(self) -> Tqdm:
        return self._bar_or_nothing(super().init_train_tqdm)

    def init_validation_tqdm(self) -> Tqdm:
        return self._bar_or_nothing(super().init_validation_tqdm)

    def init_test_tqdm(self) -> Tqdm:
        return self._bar_or_nothing(super().init_test_tqdm)

    def init_predict_tqdm(self) -> Tqdm:
        return self._bar_or_nothing(super().init_predict_tqdm)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._terminal() or not self.is_enabled or trainer.sanity_checking:
            return
        metrics = {k: v for k, v in self.get_metrics(trainer, pl_module).items() if k != "v_num"}
        of = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in sorted(metrics.items()))
        log.info("Epoch %d%s%s", trainer.current_epoch + 1, of, f": {shown}" if shown else "")
