"""A run stopped by SIGTERM or Ctrl-C (SIGINT) never exits 0: it exits 143 or 130 and says how to go on.

Lightning stops cleanly on both, in every stage (sanity check, fit, validate, test): on SIGTERM it raises
``SIGTERMException``, a ``SystemExit`` whose code is ``None``, that is exit code 0; on SIGINT it shuts down and calls
``sys.exit(1)``. A scheduler would record the first as a success, with no ``metrics.json``.
"""

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def _how_to_go_on(cfg: DictConfig, trainer: L.Trainer, stage: str) -> str:
    run_dir = cfg.paths.output_dir
    if stage == "fit":
        return (f"during epoch {trainer.current_epoch}; {run_dir}/checkpoints/last.ckpt holds the last finished epoch. "
                f"Resume with the same command plus ckpt_path=last hydra.run.dir={run_dir} (or auto_resume=true).")
    if cfg.get("train", True):
        return (f"while testing: no metrics.json was written. The training is done; finish the run with the same "
                f"command plus ckpt_path=last hydra.run.dir={run_dir} (or auto_resume=true).")
    return "while testing: no metrics.json was written. Run the same eval.py command again."


@contextmanager
def exit_code_on_signal(cfg: DictConfig, trainer: L.Trainer, stage: str) -> Iterator[None]:
    """Around ``trainer.fit``/``trainer.test``: turn Lightning's clean stop on a signal into exit 143 or 130."""
    try:
        yield
    except SIGTERMException as stop:
        log.error("Stopped by SIGTERM %s", _how_to_go_on(cfg, trainer, stage))
        raise SystemExit(128 + signal.SIGTERM) from stop
    except (KeyboardInterrupt, SystemExit) as stop:
        if isinstance(stop, SystemExit) and trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        log.error("Stopped by Ctrl-C (SIGINT) %s", _how_to_go_on(cfg, trainer, stage))
        raise SystemExit(128 + signal.SIGINT) from stop
