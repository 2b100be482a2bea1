"""One job of a sweep: a failure is recorded in its run directory and the sweep goes on.

Hydra's launchers stop a multirun at the first job that raises (the basic launcher after its batch, the
submitit launcher and the Optuna sweeper at once). In ``MULTIRUN`` mode :func:`run_job` catches the
exception, logs it, writes ``<job dir>/error.txt`` (read by ``python -m zoo.run.compare``) and returns the worst
possible value of the optimised metric, so that Optuna marks the trial as bad and samples elsewhere. A single
run (no ``-m``) raises as usual.
"""

import logging
import math
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

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


def record_failure(output_dir: str | Path, err: BaseException) -> Path:
    """Write the job's overrides and traceback to ``<output_dir>/error.txt``."""
    path = Path(output_dir) / ERROR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    overrides = " ".join(HydraConfig.get().overrides.task) if HydraConfig.initialized() else ""
    trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    path.write_text(f"overrides: {overrides}\nerror: {type(err).__name__}: {err}\n\n{trace}")
    return path


def run_job(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """Run ``task(cfg)``; in a multirun, turn an exception or a missing metric into the worst value."""
    if not in_multirun():
        return task(cfg)
    _finish_wandb_run(exit_code=0)  # a run left open by an earlier job of this process
    hc = HydraConfig.get()
    try:
        value = task(cfg)
    except Exception as err:  # noqa: BLE001 - any job error must not stop the sweep
        path = record_failure(hc.runtime.output_dir, err)
        _finish_wandb_run(exit_code=1)
        log.error("Sweep job #%s (%s) FAILED: %s: %s -- traceback in %s; the sweep goes on.",
                  hc.job.num, " ".join(hc.overrides.task), type(err).__name__, err, path)
        return worst_value()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        log.warning("Sweep job #%s returned no value for optimized_metric=%s; scoring it as the worst.",
                    hc.job.num, cfg.get("optimized_metric"))
        return worst_value()
    return value


def _finish_wandb_run(exit_code: int) -> None:
    """Close the W&B run of a job, so that the next job of the same process starts its own."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


class FailedJobsReport(Callback):
    """Hydra callback: at the end of a multirun, list the jobs that failed and exit non-zero if any did.

    A job failed when its directory holds no ``metrics.json``: ``error.txt`` says why (an exception), else it was
    killed or crashed (e.g. a submitit job out of memory). Hydra turns an ``Exception`` raised by a callback into a
    warning, so the exit code is set with ``SystemExit``, after every other callback ran.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = sorted(p.parent for p in sweep_dir.glob("*/.hydra"))
        failed = [job for job in jobs if not (job / "metrics.json").is_file()]
        if not failed:
            log.info("Sweep finished: %d jobs recorded in %s.", len(jobs), sweep_dir)
            return
        lines = "\n".join(f"  {job.name}: {_reason(job)}" for job in failed)
        log.error("Sweep finished with %d FAILED job(s) of %d (the others are recorded in %s):\n%s", len(failed),
                  len(jobs), sweep_dir, lines)
        raise SystemExit(1)


def _reason(job: Path) -> str:
    error = job / ERROR_FILE
    if error.is_file():
        return error.read_text().splitlines()[1]
    return "no metrics.json and no error.txt: the job was killed or crashed (see its log)"
