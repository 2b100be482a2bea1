"""Send the report's tables and figures to Weights & Biases, as one run of job type ``report``.

Offline (files in ``<out>/wandb/``, ``wandb sync`` them later) unless logged in or ``WANDB_MODE`` says otherwise,
as the training runs' logger (``configs/logger/wandb.yaml``).
"""

import logging
import netrc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a training run imports mode() without pandas
    import pandas as pd

log = logging.getLogger(__name__)

WANDB_HOST = "api.wandb.ai"


def logged_in() -> bool:
    """Whether W&B credentials are present (``WANDB_API_KEY`` or a ``wandb login`` entry in ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def mode(configured: str | None = None) -> str:
    """``configured``, else ``WANDB_MODE``, else ``online`` when logged in and not in a SLURM job (compute nodes
    often have no internet), else ``offline``."""
    online = logged_in() and "SLURM_JOB_ID" not in os.environ
    return configured or os.environ.get("WANDB_MODE") or ("online" if online else "offline")


def log_report(out: Path, tables: "dict[str, pd.DataFrame]", images: dict[str, Path],
               settings: dict[str, Any] | None = None, name: str | None = None) -> str | None:
    """Log ``tables`` (W&B Tables) and ``images`` (PNG files) under their keys; return the W&B run's directory.

    ``settings``: ``project``, ``entity`` and ``mode`` (the runs' ``logger.wandb``); ``None`` values are defaults.
    """
    try:
        import wandb
    except ImportError:
        log.warning("No W&B report: wandb is not installed (pip install 'zoo[wandb]').")
        return None
    settings = settings or {}
    run = wandb.init(project=settings.get("project") or os.environ.get("WANDB_PROJECT") or "zoo",
                     entity=settings.get("entity"), mode=mode(settings.get("mode")), dir=str(out),
                     name=name or f"report-{Path(out).resolve().name}", job_type="report",
                     config={"folder": str(Path(out).resolve())}, reinit="create_new")
    try:
        payload: dict[str, Any] = {key: wandb.Table(dataframe=_plain(df)) for key, df in tables.items() if len(df)}
        payload.update({key: wandb.Image(str(path)) for key, path in images.items() if Path(path).is_file()})
        run.log(payload)
        return str(run.dir)
    finally:
        run.finish()


def _plain(df: "pd.DataFrame") -> "pd.DataFrame":
    """Columns W&B can store: an index as columns, objects as text."""
    df = df.reset_index() if df.index.name or any(df.index.names) else df.reset_index(drop=True)
    return df.apply(lambda col: col.astype(str) if col.dtype == object else col)
