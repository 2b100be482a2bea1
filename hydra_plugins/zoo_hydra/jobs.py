"""Sweeps you can trust: a failed job is recorded and the sweep goes on; re-running a sweep finishes it.

Hydra's launchers stop a multirun at the first job that raises (the basic launcher after its batch, the
submitit launcher and the Optuna sweeper at once). In ``MULTIRUN`` mode :func:`run_job` catches the
exception, logs it, writes ``<job dir>/error.txt`` (read by ``python -m zoo.report``) and returns the worst
possible value of the optimised metric, so that Optuna marks the trial as bad and samples elsewhere. A single
run (no ``-m``) raises as usual.

The same ``-m`` command again, into the same ``hydra.sweep.dir``, finishes the sweep, with every launcher:

- a finished job (``metrics.json``) is reported as done and not touched, not one byte (``.hydra/`` included:
  :func:`hydra_plugins.zoo_hydra.resolvers.record_subdir`); its stored metric goes back to the sweeper;
- an unfinished job resumes from its ``last.ckpt``; a failed one runs again (its ``error.txt`` is kept beside,
  as ``error_<time>.txt``);
- a different command into a folder that holds another sweep's jobs is refused before any job starts
  (:class:`~hydra_plugins.zoo_hydra.callbacks.SweepGuard`), naming the keys that differ.

SIGTERM or Ctrl-C stops a sweep: no new job starts, the running ones stop (:mod:`zoo.signals`), and the
sweep exits 143/130 saying how to finish it.
"""

import json
import logging
import math
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

import zoo.signals as signals
from hydra_plugins.zoo_hydra.resolvers import slurm_rank
from zoo.errors import ZooError
from zoo.files import atomic_write
from zoo.run.rundir import METRICS_FILE, checkpoints, is_finished

log = logging.getLogger(__name__)

ERROR_FILE = "error.txt"


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def worst_value() -> float:
    """What a failed trial scores: -inf when the sweeper maximises, +inf when it minimises, else NaN."""
    direction = str(HydraConfig.get().sweeper.get("direction", "")).lower() if HydraConfig.initialized() else ""
    if "max" in direction:
        return -math.inf
    if "min" in direction:
        return math.inf
    return math.nan


def finish_hint(sweep_dir: str | Path) -> str:
    return (f"Finish the sweep with the same command plus hydra.sweep.dir={sweep_dir}: finished jobs are kept as "
            f"they are, unfinished ones resume from their last.ckpt, failed ones run again.")


def stop_hint(cfg: DictConfig) -> str:
    """How to go on after a stop signal: finish the sweep, or resume the run (naming only what exists)."""
    if in_multirun():
        return finish_hint(HydraConfig.get().sweep.dir)
    return signals.run_hint(cfg.paths.output_dir, trained=cfg.get("train", True))


def install_signals(cfg: DictConfig) -> None:
    """Stop signals in a process that runs a job (see :mod:`zoo.signals`)."""
    launcher = HydraConfig.get().launcher if HydraConfig.initialized() else {}
    bound = launcher.get("max_num_timeout") if "SlurmLauncher" in str(launcher.get("_target_", "")) else None
    signals.install(lambda: stop_hint(cfg), max_requeues=int(cfg.get("max_requeues") or 0 if bound is None else bound))


def record_failure(output_dir: str | Path, err: BaseException | str) -> Path:
    """Write the job's overrides and the error (a traceback, or a text) to ``<output_dir>/error.txt``."""
    path = Path(output_dir) / ERROR_FILE
    overrides = " ".join(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ""
    if isinstance(err, BaseException):
        trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        text = f"error: {type(err).__name__}: {err}\n\n{trace}"
    else:
        text = f"error: {err}\n"
    return atomic_write(path, lambda f: f.write(f"overrides: {overrides}\n{text}".encode()))


def _stored_overrides(job_dir: Path) -> list[str] | None:
    path = job_dir / ".hydra" / "overrides.yaml"
    return list(OmegaConf.load(path)) if path.is_file() else None


def finished_value(job_dir: Path, overrides: list[str], metric: str | None) -> float | None:
    """The stored value of a finished sweep job (logged as done, not run again); None when it has to run.

    A folder that holds a finished job of other settings is left as it is and scores the worst value.
    """
    if not is_finished(job_dir):
        return None
    stored = _stored_overrides(job_dir)
    if stored is not None and sorted(stored) != sorted(overrides):
        log.error("Sweep job %s: %s holds a finished job of other settings (%s); left as it is.", job_dir.name,
                  job_dir, " ".join(stored))
        return worst_value()
    log.info("Sweep job %s is done (%s): kept as it is.", job_dir.name, job_dir / METRICS_FILE)
    value = json.loads((job_dir / METRICS_FILE).read_text()).get(metric)
    return worst_value() if value is None else float(value)


def resumes(job_dir: Path) -> bool:
    """Whether a sweep job continues from its checkpoint (stopped, requeued, or its sweep re-run); logs it."""
    if not checkpoints(job_dir):
        return False
    log.info("Sweep job %s resumes from its checkpoint in %s.", job_dir.name, job_dir)
    return True


def run_job(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """Run ``task(cfg)``; in a multirun, finish the job (see the module doc) and turn an error into the worst value."""
    install_signals(cfg)
    if not in_multirun():
        return _single_run(task, cfg)
    _finish_wandb_run(exit_code=0)  # a run left open by an earlier job of this process
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    name = job_dir.name
    finished = finished_value(job_dir, list(hc.overrides.task), cfg.get("optimized_metric"))
    if finished is not None:
        return finished
    _set_aside_error(job_dir)
    if resumes(job_dir) and cfg.get("ckpt_path") is None:  # a stopped, requeued or re-run job: resume it
        with open_dict(cfg):
            cfg.auto_resume = True
    if signals.received():  # this process was told to stop: start no other job
        raise SystemExit(signals.exit_code(signals.received()))
    try:
        value = task(cfg)
    except SystemExit as stop:
        if signals.received() and multiprocessing.current_process().name != "MainProcess":
            logging.shutdown()  # a pool worker (hydra/launcher=joblib) leaves the pool: it would take the next job
            os._exit(stop.code if isinstance(stop.code, int) else 1)
        raise
    except Exception as err:  # noqa: BLE001 - any job error must not stop the sweep
        path = record_failure(job_dir, err) if slurm_rank() == 0 else job_dir / ERROR_FILE
        _finish_wandb_run(exit_code=1)
        log.error("Sweep job %s FAILED: %s: %s -- traceback in %s; the sweep goes on.",
                  name, type(err).__name__, err, path)
        return worst_value()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        log.warning("Sweep job %s returned no value for optimized_metric=%s; scoring it as the worst.",
                    name, cfg.get("optimized_metric"))
        return worst_value()
    return value


def _set_aside_error(job_dir: Path) -> None:
    """An earlier attempt failed: this one runs again; its error is kept beside, as ``error_<time>.txt``."""
    if slurm_rank() == 0 and (job_dir / ERROR_FILE).is_file():
        (job_dir / ERROR_FILE).rename(job_dir / f"error_{time.strftime('%Y-%m-%d_%H-%M-%S')}.txt")


def _single_run(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """A run without ``-m``: errors are raised. A refused run whose folder holds nothing else (no checkpoint, no
    metrics.json: only what Hydra wrote before the job) is marked failed with ``error.txt``, which the report skips."""
    run_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    if run_dir is not None and not is_finished(run_dir):
        _set_aside_error(run_dir)
    try:
        return task(cfg)
    except ZooError as err:
        if run_dir is not None and slurm_rank() == 0 and not is_finished(run_dir) and not checkpoints(run_dir):
            record_failure(run_dir, f"refused before training: {err}")
        raise


def _finish_wandb_run(exit_code: int) -> None:
    """Close the W&B run of a job, so that the next job of the same process starts its own."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)
