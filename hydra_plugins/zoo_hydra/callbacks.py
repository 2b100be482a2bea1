"""Zoo's Hydra callbacks (``configs/hydra/default.yaml``): checks before Hydra writes anything, and sweeps you can trust.

- :class:`PreflightChecks`: the run or sweep folder must be writable; ``hydra/launcher=slurm`` needs ``sbatch``.
- :class:`RunDirGuard`: a single run checks and locks its run directory before Hydra writes ``.hydra/`` into it.
- :class:`SweepGuard`: a sweep folder holds one sweep; SIGTERM or Ctrl-C stops the whole sweep.
- :class:`FailedJobsReport`: a sweep lists its failed jobs and exits 1 if any failed.

What a sweep job does (finished jobs kept, unfinished ones resumed, failures recorded) is in :mod:`hydra_plugins.zoo_hydra.jobs`.
"""

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

import zoo.signals as signals
from hydra_plugins.zoo_hydra.jobs import ERROR_FILE, finish_hint
from zoo.errors import (
    WHERE,
    ConfigError,
    StorageError,
    ZooError,
    exit_with_message,
    reported_as_message,
    storage_message,
)
from zoo.files import atomic_write
from zoo.keys import neutral
from zoo.run import lock
from zoo.run.rundir import METRICS_FILE, check_run_dir

log = logging.getLogger("hydra_plugins.zoo_hydra.jobs")

SWEEP_RECORD = "multirun.yaml"  # written by Hydra's launchers into the sweep folder


def check_writable(folder: Path) -> None:
    """Create ``folder`` (as Hydra is about to) and write and remove a probe file in it.

    Raises:
        StorageError: The folder cannot be created or written (read-only, not yours, disk full).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".zoo_write_check_"):
            pass
    except OSError as err:
        raise StorageError(storage_message(err) or f"Cannot write into {folder} ({err}): {WHERE}.") from err


class PreflightChecks(Callback):
    """Hydra callback: before the first job, check what Zoo can check that Hydra would only fail on with a traceback.

    * The run (or sweep) directory must be writable: Hydra writes ``.hydra/`` there before Zoo's code runs.
    * ``hydra/launcher=slurm`` needs SLURM's ``sbatch`` on this machine.

    A failure prints one line and exits with code 2, like every :class:`~zoo.errors.ZooError`.
    """

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        self._check(config, "hydra.sweep.dir")

    @staticmethod
    def _check(config: DictConfig, dir_key: str) -> None:
        with reported_as_message():
            if not HydraConfig.initialized():
                HydraConfig.instance().set_config(config)  # the run dir reads ${hydra:runtime.choices...}
            launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
            if dir_key == "hydra.sweep.dir" and "SlurmLauncher" in launcher and shutil.which("sbatch") is None:
                raise ConfigError(
                    "hydra/launcher=slurm submits each job with SLURM's sbatch, which is not on this machine's PATH: "
                    "run the sweep on a SLURM login node, or drop hydra/launcher=slurm (or use "
                    "hydra/launcher=submitit_local) to run the jobs here."
                )
            folder = OmegaConf.select(config, dir_key, default=None)
            if folder is not None:
                check_writable(Path(str(folder)))


class RunDirGuard(Callback):
    """Hydra callback: check and lock the run directory before Hydra writes into it (single runs)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
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

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        lock.release(str(config.hydra.run.dir))


def _sweep_keys(config: DictConfig) -> dict[str, str]:
    """What defines a sweep: its task overrides (``key=value``) and the sweeper's own parameters."""
    keys = {}
    for override in config.hydra.overrides.task:
        key, _, value = str(override).partition("=")
        if not neutral(key.lstrip("+~")):  # where files go, what is shown: free to differ
            keys[key] = value
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    keys.update({f"hydra.sweeper.params.{k}": str(v) for k, v in params.items()})
    grid = OmegaConf.select(config, "hydra.sweeper.grid", default=None) or {}  # hydra/sweeper=grid
    keys.update({f"hydra.sweeper.grid.{t}.{k}": str(v) for t, sweeps in grid.items() for k, v in (sweeps or {}).items()})
    return keys


def check_same_sweep(config: DictConfig, sweep_dir: Path) -> None:
    """Refuse to launch into ``sweep_dir`` when it holds jobs of another command (the keys that differ named).

    Raises:
        ConfigError: The stored sweep's overrides or sweeper parameters differ from ``config``'s.
    """
    record = sweep_dir / SWEEP_RECORD
    if not record.is_file():
        if any(sweep_dir.glob(f"*/{METRICS_FILE}")):
            raise ConfigError(f"{sweep_dir} holds finished runs but no {SWEEP_RECORD}: it is not a Zoo sweep. "
                              f"Give another hydra.sweep.dir.")
        return
    try:
        stored = _sweep_keys(OmegaConf.load(record))
    except Exception as err:  # noqa: BLE001 - a damaged record: refuse rather than guess
        raise ConfigError(f"{record} cannot be read ({err}): give another hydra.sweep.dir.") from err
    new = _sweep_keys(config)
    differ = sorted(k for k in stored.keys() | new.keys() if stored.get(k) != new.get(k))
    if differ:
        shown = "; ".join(f"{k}: {stored.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in differ)
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} holds another sweep ({shown}). Re-run its own command to finish it, or "
            f"give a new hydra.sweep.dir for this one; Zoo never mixes two sweeps' jobs."
        )
    done = sum(1 for _ in sweep_dir.glob(f"*/{METRICS_FILE}"))
    log.info("Finishing the sweep in %s: %d finished job(s) are kept as they are.", sweep_dir, done)


class SweepGuard(Callback):
    """Hydra callback: before any job, refuse another sweep's folder; stop the whole sweep on SIGTERM/SIGINT."""

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        with reported_as_message():
            check_same_sweep(config, sweep_dir)
        signals.install(lambda: finish_hint(sweep_dir))
        signals.on_stop(_stop_workers)
        record = sweep_dir / SWEEP_RECORD
        if record.is_file():  # Hydra writes it again at launch: the sweep's first record is put back at its end
            kept, times = record.read_bytes(), record.stat()
            _restore_record.append(lambda: _put_back(record, kept, (times.st_atime_ns, times.st_mtime_ns)))
            signals.on_stop(keep_sweep_record)


_restore_record: list[Callable[[], None]] = []


def _put_back(path: Path, content: bytes, times: tuple[int, int]) -> None:
    if path.read_bytes() != content:
        atomic_write(path, lambda f: f.write(content))
    os.utime(path, ns=times)


def keep_sweep_record() -> None:
    """Put back the ``multirun.yaml`` a finished-again sweep started with (its record is never rewritten)."""
    while _restore_record:
        _restore_record.pop()()


def _stop_workers() -> None:
    """End this process's worker processes (``hydra/launcher=joblib``'s loky workers), so that nothing runs or
    writes after the sweep exits: SIGTERM (each stops its job like a run does), then SIGKILL after 30 s."""
    workers = multiprocessing.active_children()
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + 30
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may end between the check and the kill
                os.kill(worker.pid, signal.SIGKILL)
            worker.join(5)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: each holds ``.hydra/`` or (a job that died before Hydra ran) ``error.txt``."""
    return sorted({p.parent for p in (*sweep_dir.glob("*/.hydra"), *sweep_dir.glob(f"*/{ERROR_FILE}"))})


class FailedJobsReport(Callback):
    """Hydra callback: at the end of a multirun, list the jobs that failed and exit non-zero if any did.

    A job failed when its directory holds no ``metrics.json``: ``error.txt`` says why (an exception), else it was
    killed or crashed (e.g. a submitit job out of memory). Hydra turns an ``Exception`` raised by a callback into a
    warning, so the exit code is set with ``SystemExit``, after every other callback ran.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        keep_sweep_record()
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = job_dirs(sweep_dir)
        failed = [job for job in jobs if not (job / METRICS_FILE).is_file()]
        if not failed:
            log.info("Sweep finished: %d jobs recorded in %s.", len(jobs), sweep_dir)
            return
        lines = "\n".join(f"  {job.name}: {_reason(job)}" for job in failed)
        log.error("Sweep finished with %d FAILED job(s) of %d (the others are recorded in %s):\n%s\n%s",
                  len(failed), len(jobs), sweep_dir, lines, finish_hint(sweep_dir))
        raise SystemExit(1)


def _reason(job: Path) -> str:
    error = job / ERROR_FILE
    if error.is_file():
        lines = [line for line in error.read_text(errors="replace").splitlines() if line.startswith("error: ")]
        return lines[0] if lines else f"see {error}"
    return "no metrics.json and no error.txt: the job was killed or crashed (see its log)"
