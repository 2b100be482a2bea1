"""Logger factories whose behaviour depends on the machine (``configs/logger/*.yaml``)."""

import logging
import netrc
import os
import secrets
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

WANDB_HOST = "api.wandb.ai"
RUN_ID_FILE = "wandb_run_id.txt"


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
            Without an ``id``, the run's id is kept in ``<save_dir>/wandb_run_id.txt``: a resumed run
            (``ckpt_path=last``, ``auto_resume=true``) in the same run directory continues the same W&B run.
    """
    if kwargs.get("id") is None and kwargs.get("save_dir"):
        kwargs["id"], kwargs["resume"] = run_id(Path(kwargs["save_dir"])), "allow"
    if mode is None:
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_logged_in() else "offline")
        if mode == "offline":
            log.info("W&B: not logged in and WANDB_MODE unset, logging offline (`wandb login` to go online).")
    return WandbLogger(mode=mode, **kwargs)


def run_id(run_dir: Path) -> str:
    """The W&B run id of ``run_dir``: read from its ``wandb_run_id.txt``, or drawn and written there (rank zero)."""
    path = run_dir / RUN_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    new_id = secrets.token_hex(4)  # W&B run ids: up to 64 letters/digits, unique in the project
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(new_id + "\n")
    return new_id
