"""What a run may write where: a run directory holds one run, and a finished run is never written again.

- A fresh run refuses a run directory that holds checkpoints or a ``metrics.json`` of an earlier run.
- Only the run itself continues there (``ckpt_path=last``, ``auto_resume=true`` or a checkpoint inside it);
  once it is finished (``metrics.json``), resuming it again changes nothing (see :mod:`zoo.run.resume`).
- ``eval.py`` writes into a new folder of its own, never into a run directory that holds a run.

:class:`RunDirGuard` applies these rules, and takes the run directory's lock, in Hydra's ``on_run_start``:
before Hydra writes ``.hydra/`` into the directory. A resumed run keeps the first ``.hydra/`` (the run's own
record) and writes its own into ``.hydra/resumed_<time>/``.
"""

import logging
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from zoo.errors import ConfigError, ZooError
from zoo.run import lock

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


def checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of the run in ``run_dir``: ``checkpoints/*.ckpt`` and Lightning's ``hpc_ckpt_<n>.ckpt``."""
    run_dir = Path(run_dir)
    return sorted([*run_dir.glob("checkpoints/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")])


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / METRICS_FILE).is_file()


def resumes_in(cfg: DictConfig, run_dir: str | Path) -> bool:
    """Whether ``cfg`` continues the run of ``run_dir`` (rather than starting one)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt == "last" or (ckpt is None and cfg.get("auto_resume")):
        return True
    return ckpt is not None and Path(run_dir).resolve() in Path(ckpt).resolve().parents


def check_run_dir(cfg: DictConfig, run_dir: str | Path) -> None:
    """Refuse to start a run (or an evaluation) in a directory that holds another run's results.

    Raises:
        ConfigError: ``run_dir`` holds checkpoints or a ``metrics.json``, and ``cfg`` does not resume that run.
    """
    run_dir = Path(run_dir)
    held = [p for p in (run_dir / METRICS_FILE,) if p.is_file()] + checkpoints(run_dir)
    if not held:
        return
    first = (checkpoints(run_dir) or held)[0].relative_to(run_dir)
    if not cfg.get("train", True):
        raise ConfigError(
            f"hydra.run.dir={run_dir} holds a run ({first}, ...): eval.py writes into a new folder of its own and "
            f"never over a run's files. Leave hydra.run.dir out (logs/evals/<time>), or give a new one."
        )
    if not resumes_in(cfg, run_dir):
        what = "checkpoints" if checkpoints(run_dir) else "the results"
        raise ConfigError(
            f"{run_dir / 'checkpoints'} already holds {what} of an earlier run ({first}, ...). Resume it with "
            f"ckpt_path=last (or auto_resume=true), or start afresh in another hydra.run.dir; Zoo does not "
            f"overwrite them."
        )


class RunDirGuard(Callback):
    """Hydra callback: check and lock the run directory before Hydra writes into it (single runs)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from zoo.run.cli import exit_with_message

        HydraConfig.instance().set_config(config)
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.run.dir = str(run_dir)  # resolved once: `${now:...}` must name the directory locked here
            try:
                lock.acquire(run_dir)  # first: a directory in use is refused as such, whatever it holds
                check_run_dir(config, run_dir)
            except ZooError as err:
                lock.release(run_dir)
                exit_with_message(err)
            subdir = config.hydra.output_subdir
            if is_finished(run_dir):  # its files are final: nothing to add, no log to append to
                config.hydra.output_subdir = None
                logging_cfg = config.hydra.job_logging
                if "file" in (logging_cfg.get("handlers") or {}):
                    del logging_cfg.handlers["file"]
                    logging_cfg.root.handlers = [h for h in logging_cfg.root.handlers if h != "file"]
            elif subdir is not None and (run_dir / str(subdir) / "config.yaml").is_file():
                config.hydra.output_subdir = f"{subdir}/resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        lock.release(str(config.hydra.run.dir))
