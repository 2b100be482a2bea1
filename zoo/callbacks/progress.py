"""The progress bar of ``configs/callbacks/default.yaml``."""

import sys

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class ProgressBar(TQDMProgressBar):
    """Lightning's tqdm progress bars; where stdout is not a terminal (a file, a SLURM log) without the validation
    bar beside the epoch's, which moves the cursor with escape codes (``ESC[A``). The epoch's bar still shows the
    validation metrics."""

    def init_validation_tqdm(self) -> Tqdm:
        beside = self.trainer.state.fn != "validate"  # as Lightning places it: below the epoch's bar
        if beside and not sys.stdout.isatty():
            return Tqdm(disable=True)
        return super().init_validation_tqdm()
