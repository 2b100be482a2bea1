"""The run directory: status, lock, failure record and admission (file names: zoo.files). A finished run is never
written again; one run (or sweep) per directory at a time, by an ``flock`` on ``.zoo.lock`` naming its holder. DDP
ranks join by the token in ``ZOO_RUN_TOKEN``, the tasks of one SLURM step by its job id."""

import atexit
import fcntl
import json
import os
import secrets
import socket
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import zoo.files as files
from zoo.errors import WHERE, ConfigError, StorageError, storage_message
from zoo.files import CHECKPOINT_DIR, ERROR_FILE, HYDRA_DIR, LOCK_NAME, METRICS_FILE, SWEEP_RECORD
from zoo.keys import flatten

TOKEN_ENV = "ZOO_RUN_TOKEN"
JOIN_WAIT_S = 120.0

_held: dict[Path, IO[str]] = {}  # lock file -> its open file, for the locks this process took


def in_multirun() -> bool:
    """Whether this process runs a sweep's job (its run directory lies in the sweep folder)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of the run in ``run_dir``: ``checkpoints/*.ckpt`` and Lightning's ``hpc_ckpt_<n>.ckpt``."""
    run_dir = Path(run_dir)
    return sorted([*run_dir.glob(f"{CHECKPOINT_DIR}/*.ckpt"), *run_dir.glob("hpc_ckpt_*.ckpt")])


def status(run_dir: str | Path) -> str:
    """``finished`` (``metrics.json``), ``failed`` (``error.txt``), ``unfinished`` (checkpoints) or ``fresh``."""
    run_dir = Path(run_dir)
    if (run_dir / METRICS_FILE).is_file():
        return "finished"
    if (run_dir / ERROR_FILE).is_file():
        return "failed"
    return "unfinished" if checkpoints(run_dir) else "fresh"


def _is_run(folder: Path) -> bool:
    return status(folder) == "finished" or ((folder / HYDRA_DIR).is_dir() and bool(checkpoints(folder)))


def run_above(path: str | Path) -> Path | None:
    """The run directory that ``path`` is or lies in (finished, or with checkpoints and ``.hydra/``), else None."""
    return next((f for f in (Path(path).resolve(), *Path(path).resolve().parents) if _is_run(f)), None)


def root_dir(root: str, logs: str) -> str:
    """``paths.root_dir``: ``root``; started inside a run or a sweep (``cd`` into one), the folder above the
    ``logs`` folder that holds it (else the folder that holds it): data and logs never go into a run. With
    ``hydra.job.chdir=true`` (the job runs in its run folder), a relative ``root`` is where the command started."""
    if HydraConfig.initialized() and HydraConfig.get().job.get("chdir") and not Path(root).is_absolute():
        root = os.path.join(HydraConfig.get().runtime.cwd, root)
    path = Path(root).resolve()
    held = [f for f in (path, *path.parents) if _is_run(f) or (f / SWEEP_RECORD).is_file()]
    if not held:
        return root
    return str(next((f.parent for f in held[-1].parents if f.name == logs), held[-1].parent))


OUTPUT_SECTIONS = ("callbacks", "logger", "trainer")  # what they write is the run's: it goes into the run's folder


def own_folder(cfg: DictConfig) -> Path:
    """The run's folder, ``paths.output_dir``: refused (:class:`ConfigError`) unless it is the folder Hydra records
    the run in (``hydra.run.dir``, or a sweep job's folder). One run, one folder."""
    folder = Path(cfg.paths.output_dir)
    hydra_dir = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None
    if hydra_dir and folder.resolve() != Path(hydra_dir).resolve():
        raise ConfigError(f"paths.output_dir={folder} is not the folder Hydra records this run in ({hydra_dir}): "
                          f"a run's files all go into its one folder. Leave paths.output_dir out and give "
                          f"hydra.run.dir={folder} instead (in a sweep: hydra.sweep.dir).")
    return folder


def check_paths(cfg: DictConfig) -> None:
    """Refuse (:class:`ConfigError`) a folder setting (``data.data_dir``, ``*.dirpath``, ``*.save_dir``...) that
    lies inside another run, or one of the callbacks, loggers or trainer outside this run's folder: Zoo never
    writes into another run, and a run's files are all in its own folder (another run never writes over them)."""
    own = Path(cfg.paths.output_dir).resolve()
    for key in flatten(OmegaConf.to_container(cfg, resolve=False)):
        if key.startswith("hydra.") or not key.rsplit(".", 1)[-1].endswith(("dir", "dirpath")):
            continue
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).resolve()
        outer = run_above(path)
        if outer is not None and outer != own:
            raise ConfigError(f"{key}={value} lies inside the run directory {outer}: Zoo never writes into "
                              f"another run. Give a folder outside it.")
        if key.split(".")[0] in OUTPUT_SECTIONS and own != path and own not in path.parents:
            raise ConfigError(f"{key}={value} lies outside the run directory {own}: a run writes only into its own "
                              f"folder (another run given the same {key} would write over its files). Leave {key} "
                              f"out, or give hydra.run.dir (in a sweep: hydra.sweep.dir) to put the whole run elsewhere.")


def continues_run(cfg: DictConfig) -> bool:
    """Whether ``cfg`` continues its own run: ``ckpt_path=last``, or ``auto_resume`` and no ``ckpt_path``."""
    ckpt = cfg.get("ckpt_path")
    return ckpt == "last" or (ckpt is None and bool(cfg.get("auto_resume")))


def held_below(folder: Path) -> Path | None:
    """A sweep's record in ``folder``, or a run or a sweep up to three levels below it, else None."""
    patterns = [SWEEP_RECORD, *(f"{'*/' * depth}{name}" for depth in (1, 2, 3)
                                for name in (METRICS_FILE, HYDRA_DIR, SWEEP_RECORD))]
    return next((p for pattern in patterns for p in folder.glob(pattern)), None)


def sweep_above(path: Path) -> Path | None:
    """The sweep folder (it holds ``multirun.yaml``) that ``path`` lies in, else None."""
    return next((f for f in path.resolve().parents if (f / SWEEP_RECORD).is_file()), None)


def check_outside_runs(key: str, folder: Path, start: Path) -> None:
    """Refuse (:class:`ConfigError`) ``key=folder`` when ``start`` (the folder or its parent) is or lies in a run."""
    outer = run_above(start)
    if outer is not None:
        where = "is" if outer == folder.resolve() else "lies inside"
        raise ConfigError(f"{key}={folder} {where} the run directory {outer}: Zoo never writes into another run. "
                          f"Give a folder outside it (or leave {key} out).")


def check_run_dir(cfg: DictConfig, run_dir: str | Path) -> None:
    """Refuse (:class:`ConfigError`) a run or evaluation in a directory that holds, or lies inside, another run;
    that holds a sweep or runs below it; or that lies in a sweep's folder but is none of its jobs."""
    run_dir = Path(run_dir)
    check_outside_runs("hydra.run.dir", run_dir, run_dir.resolve().parent)
    inner, sweep = held_below(run_dir), sweep_above(run_dir)
    if inner is not None:
        raise ConfigError(f"hydra.run.dir={run_dir} holds a sweep or other runs ({inner.relative_to(run_dir)}): "
                          f"Zoo never writes a run into a sweep's folder or above other runs. Give a new folder "
                          f"(or leave hydra.run.dir out).")
    if sweep is not None and not in_multirun() and not _is_run(run_dir):
        what = "one of its jobs with nothing to resume" if (run_dir / HYDRA_DIR).is_dir() else "none of its jobs"
        raise ConfigError(f"hydra.run.dir={run_dir} lies in the sweep folder {sweep} but is {what}: Zoo never "
                          f"mixes a run into a sweep (the sweep's own command runs its jobs again). Give a folder "
                          f"outside it (or leave hydra.run.dir out).")
    recorded = run_dir / HYDRA_DIR / "config.yaml"
    try:
        trained = bool(OmegaConf.load(recorded).get("train", True)) if recorded.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged record: the checks below still hold
        trained = None
    if trained is not None and trained != bool(cfg.get("train", True)):
        kind = "a training run" if trained else "an evaluation"
        raise ConfigError(f"hydra.run.dir={run_dir} holds {kind} ({HYDRA_DIR}/config.yaml): a training run and an "
                          f"evaluation never share a folder. Give a new folder (or leave hydra.run.dir out).")
    held = checkpoints(run_dir)
    if not held and status(run_dir) != "finished":
        return
    first = (held or [run_dir / METRICS_FILE])[0].relative_to(run_dir)
    if not cfg.get("train", True):
        raise ConfigError(
            f"hydra.run.dir={run_dir} holds a run ({first}, ...): eval.py writes into a new folder of its own and "
            f"never over a run's files. Leave hydra.run.dir out (logs/evals/<time>), or give a new one."
        )
    ckpt = cfg.get("ckpt_path")
    if not continues_run(cfg) and (ckpt is None or run_dir.resolve() not in Path(ckpt).resolve().parents):
        raise ConfigError(
            f"{run_dir / CHECKPOINT_DIR} already holds {'the checkpoints' if held else 'the results'} of an earlier "
            f"run ({first}, ...). Resume it with ckpt_path=last (or auto_resume=true), or start afresh in another "
            f"hydra.run.dir; Zoo does not overwrite them."
        )


def check_writable(folder: Path) -> None:
    """Create ``folder`` (as Hydra is about to) and write a probe file in it; a :class:`StorageError` if it fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".zoo_write_check_"):
            pass
    except OSError as err:
        raise StorageError(storage_message(err) or f"Cannot write into {folder} ({err}): {WHERE}.") from err


def as_typed(overrides: object) -> list[str]:
    """Hydra's record of a command's overrides (``hydra.overrides.task``), as typed: an interpolation in one
    (``hydra.sweep.subdir=${hydra.job.num}``) is never resolved."""
    if overrides is None:
        return []
    return [str(o) for o in (OmegaConf.to_container(overrides) if OmegaConf.is_config(overrides) else overrides)]


def record_failure(run_dir: str | Path, err: BaseException | str) -> Path:
    """Write ``<run_dir>/error.txt``: the job's overrides, then ``error: ...`` and the traceback (or a text)."""
    overrides = " ".join(as_typed(HydraConfig.get().overrides.task)) if HydraConfig.initialized() else ""
    if isinstance(err, BaseException):
        trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        text = f"error: {type(err).__name__}: {err}\n\n{trace}"
    else:
        text = f"error: {err}\n"
    return files.atomic_write(Path(run_dir) / ERROR_FILE, lambda f: f.write(f"overrides: {overrides}\n{text}".encode()))


def _keep_beside(path: Path) -> None:
    """Rename ``path`` to ``<name>_<time><suffix>`` in its folder (``error_<time>.txt``, ``.hydra_<time>``)."""
    path.rename(path.with_name(f"{Path(path.name).stem}_{time.strftime('%Y-%m-%d_%H-%M-%S')}{path.suffix}"))


def set_aside_failure(run_dir: str | Path) -> None:
    """An earlier attempt failed and this one runs again: its ``error.txt`` is kept beside, as ``error_<time>.txt``."""
    error = Path(run_dir) / ERROR_FILE
    if slurm_rank() == 0 and error.is_file():
        _keep_beside(error)


def set_aside_attempt(run_dir: str | Path) -> None:
    """A run that starts afresh where an earlier attempt left no checkpoint and no result: that attempt's record and
    W&B id are kept beside (``.hydra_<time>/``, ``wandb_run_id_<time>.txt``), so ``.hydra/`` says what this attempt
    runs and it logs a W&B run of its own (before Hydra writes)."""
    run_dir = Path(run_dir)
    if (run_dir / HYDRA_DIR).is_dir() and not _is_run(run_dir):
        for name in (HYDRA_DIR, files.WANDB_ID_FILE):
            if (run_dir / name).exists():
                _keep_beside(run_dir / name)


_STARTED = time.time()  # before Hydra writes this process's records (it imports this module first)


@contextmanager
def session(run_dir: str | Path | None) -> Iterator[None]:
    """Around one session of a run: a session that ends in an error leaving the run's checkpoints and result as
    they were ran nothing, and the record Hydra wrote for it (``.hydra/resumed_<time>/``) is kept beside as
    ``ran_nothing_<time>/``: no record says that settings ran which never did (zoo.report reads ``resumed_*``)."""
    before = _persisted(run_dir)
    try:
        yield
    except InUseError:  # another process's folder: nothing here is this session's
        raise
    except BaseException:
        if run_dir is not None and slurm_rank() == 0 and _persisted(run_dir) == before:
            for record in Path(run_dir, HYDRA_DIR).glob("resumed_*"):
                if record.stat().st_mtime >= _STARTED:  # this session's (the folder is locked)
                    record.rename(record.with_name("ran_nothing_" + record.name.removeprefix("resumed_")))
        raise


def _persisted(run_dir: str | Path | None) -> dict[str, int]:
    files = [*checkpoints(run_dir), Path(run_dir, METRICS_FILE)] if run_dir is not None else []
    return {str(p): p.stat().st_mtime_ns for p in files if p.is_file()}


# What Hydra writes into a run directory (resolvers): nothing into a finished run, nor from SLURM ranks after the first.


def _silent(run_dir: str) -> bool:
    return status(run_dir) == "finished" or slurm_rank() > 0


def record_subdir(run_dir: str, subdir: str) -> str | None:
    """``hydra.output_subdir``: None, ``<subdir>/resumed_<time>`` when a record exists already, else ``subdir``."""
    if _silent(run_dir):
        return None
    if (Path(run_dir) / subdir / "config.yaml").is_file():
        return f"{subdir}/resumed_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
    return subdir


def log_file(run_dir: str, name: str) -> str:
    """The job's log file, or ``os.devnull``."""
    return os.devnull if _silent(run_dir) else str(Path(run_dir) / f"{name}.log")


def run_stamp(pattern: str) -> str:
    """The time stamp in a run directory's name; ``slurm-<job id>`` for the tasks of one SLURM step (one run)."""
    if slurm_task() is not None:
        array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"slurm-{array}_{index}" if array else f"slurm-{os.environ['SLURM_JOB_ID']}"
    return time.strftime(pattern)


# The lock.


def slurm_task() -> tuple[str, int] | None:
    """``(job, rank)`` for a task of a multi-task SLURM job step (``srun``), else None. ``job`` counts requeues."""
    if int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_STEP_ID" not in os.environ:
        return None
    job = f"{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return job, int(os.environ.get("SLURM_PROCID", "0"))


def slurm_rank() -> int:
    """This process's rank among the tasks of a multi-task SLURM job step (0 elsewhere)."""
    task = slurm_task()
    return task[1] if task else 0


def _lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir).resolve() / LOCK_NAME


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


class InUseError(ConfigError):
    """Another live process holds the run directory's lock."""


def _refuse(path: Path, holder: dict) -> ConfigError:
    return InUseError(
        f"{path.parent} is in use by another run (pid {holder.get('pid')} on {holder.get('host')}, started "
        f"{holder.get('started')}): one run (or sweep) at a time per directory. Wait for it, or pick another "
        f"hydra.run.dir (hydra.sweep.dir). If no such run exists, delete {path}."
    )


def _join_slurm_job(path: Path, job: str, rank: int) -> bool:
    """Wait for rank zero of this SLURM job to hold the lock, then join its run (False: not the owner)."""
    deadline = time.monotonic() + JOIN_WAIT_S
    while time.monotonic() < deadline:
        if _read(path).get("slurm_job") == job:
            return False
        time.sleep(0.2)
    raise ConfigError(
        f"Rank {rank} of SLURM job {job.split('.')[0]} waited {JOIN_WAIT_S:.0f} s for rank 0 to lock {path.parent}, "
        f"in vain: rank 0 stopped or was refused (see its lines in the job's log)."
    )


def acquire(run_dir: str | Path) -> bool:
    """Take ``run_dir``'s lock until :func:`release` (:class:`ConfigError`: another live process holds it); True
    when this process holds it, False for a DDP rank or SLURM task that joins its run."""
    path = _lock_path(run_dir)
    token = os.environ.get(TOKEN_ENV)
    if path in _held:
        return True
    holder = _read(path)
    if token and holder.get("token") == token and holder.get("pid") != os.getpid():
        return False
    task = slurm_task()
    if task is not None and task[1] > 0:
        return _join_slurm_job(path, *task)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        file = path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise _refuse(path, _read(path)) from None
        try:
            if os.stat(path).st_ino == os.fstat(file.fileno()).st_ino:
                break  # still the lock file (not one its last holder removed while we opened it)
        except FileNotFoundError:
            pass
        file.close()
    holder = _read(path)
    if holder.get("host") == socket.gethostname() and holder.get("pid") not in (None, os.getpid()) \
            and _alive(holder["pid"]):
        file.close()
        raise _refuse(path, holder)
    token = secrets.token_hex(8)
    file.seek(0)
    file.truncate()
    file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "slurm_job": task and task[0]}))
    file.flush()
    os.environ[TOKEN_ENV] = token  # inherited by the DDP ranks this process starts
    _held[path] = file
    return True


def release(run_dir: str | Path) -> None:
    """Give back the lock of ``run_dir`` if this process holds it."""
    path = _lock_path(run_dir)
    file = _held.pop(path, None)
    if file is None:
        return
    path.unlink(missing_ok=True)  # before unlocking: a process waiting on this file then sees it gone, retries
    file.close()  # closing the file drops its flock
    os.environ.pop(TOKEN_ENV, None)


@atexit.register
def _release_all() -> None:
    """Also when the process ends with an error (a kill leaves a stale lock, taken over once its pid is gone)."""
    for path in list(_held):
        release(path.parent)


def admit(cfg: DictConfig, run_dir: str | Path) -> bool:
    """:func:`acquire`, then :func:`check_run_dir` (SLURM tasks that join check it too)."""
    owner = acquire(run_dir)
    try:
        if owner or slurm_task():
            check_run_dir(cfg, run_dir)
    except ConfigError:
        release(run_dir)
        raise
    return owner


@contextmanager
def run_dir_lock(run_dir: str | Path, cfg: DictConfig | None = None) -> Iterator[bool]:
    """Hold ``run_dir``'s lock for the block (admitting ``cfg``) unless this process holds it already; yields False
    for a rank that joins its run."""
    held = _lock_path(run_dir) in _held
    owner = held or (admit(cfg, run_dir) if cfg is not None else acquire(run_dir))
    try:
        yield owner
    finally:
        if owner and not held:
            release(run_dir)


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Wait for, then hold, an ``flock`` on the file ``path`` (e.g. one process at a time prepares a dataset)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
