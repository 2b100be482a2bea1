"""Logger factories whose behaviour depends on the machine (``configs/logger/*.yaml``)."""

import logging
import netrc
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger

log = logging.getLogger(__name__)

WANDB_HOST = "api.wandb.ai"


def wandb_logged_in() -> bool:
    """Whether W&B credentials are present (``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_logger(mode: str | None = None, **kwargs: Any) -> WandbLogger:
    """A :class:`WandbLogger` that works with no account and no network.

    Args:
        mode: ``online``, ``offline`` or ``disabled``. ``None`` (the default): ``WANDB_MODE`` when set, else
            ``online`` when logged in, else ``offline`` (``wandb sync <run dir>/wandb/offline-run-*`` later).
        **kwargs: Passed to :class:`WandbLogger` (``project``, ``name``, ``group``, ``tags``, ``save_dir``...).
    """
    if mode is None:
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
        if mode == "offline":
            log.info("W&B: not logged in and WANDB_MODE unset, logging offline (`wandb login` to go online).")
    return WandbLogger(mode=mode, **kwargs)
