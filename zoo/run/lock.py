"""One run at a time per run directory: an ``flock`` on ``<run dir>/.zoo.lock``, which names its holder.

The kernel drops an ``flock`` when its holder dies, however it dies; a lock file naming a live pid without the
``flock`` is refused too. The ranks of one run join it instead: DDP children by the token the holder puts in their
environment (``ZOO_RUN_TOKEN``), the tasks of one multi-task SLURM step by rank zero's job id in the file.
"""

import atexit
import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from zoo.errors import ConfigError

LOCK_NAME = ".zoo.lock"
TOKEN_ENV = "ZOO_RUN_TOKEN"
_held: dict[Path, tuple[IO[str], int]] = {}  # lock file -> (open file, depth): re-entrant within a process


JOIN_WAIT_S = 120.0


def slurm_task() -> tuple[str, int] | None:
    """``(job, rank)`` for a task of a multi-task SLURM job step (``srun``), else None. ``job`` counts requeues."""
    if int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or "SLURM_STEP_ID" not in os.environ:
        return None
    job = f"{os.environ['SLURM_JOB_ID']}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return job, int(os.environ.get("SLURM_PROCID", "0"))


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
    except PermissionError:
        return True
    return True


def joins_as_rank(run_dir: str | Path) -> bool:
    """Whether this process is a DDP rank started by the process that holds ``run_dir``'s lock."""
    token = os.environ.get(TOKEN_ENV)
    holder = _read(_lock_path(run_dir))
    return bool(token) and holder.get("token") == token and holder.get("pid") != os.getpid()


def _refuse(path: Path, holder: dict) -> ConfigError:
    return ConfigError(
        f"{path.parent} is in use by another run (pid {holder.get('pid')} on {holder.get('host')}, started "
        f"{holder.get('started')}): one run at a time per run directory. Wait for it, or pick another "
        f"hydra.run.dir. If no such run exists, delete {path}."
    )


def acquire(run_dir: str | Path) -> bool:
    """Take ``run_dir``'s lock (again, if this process holds it). False for a DDP rank joining its run.

    Raises:
        ConfigError: Another live process holds it.
    """
    path = _lock_path(run_dir)
    if path in _held:
        file, depth = _held[path]
        _held[path] = (file, depth + 1)
        return True
    if joins_as_rank(run_dir):
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
        fcntl.flock(file, fcntl.LOCK_UN)
        file.close()
        raise _refuse(path, holder)
    token = secrets.token_hex(8)
    file.seek(0)
    file.truncate()
    file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S"), "slurm_job": task and task[0]}))
    file.flush()
    os.environ[TOKEN_ENV] = token  # inherited by the DDP ranks this process starts
    if not _held:
        atexit.register(_release_all)  # also when the process ends with an error (a kill leaves a stale lock)
    _held[path] = (file, 1)
    return True


def release(run_dir: str | Path) -> None:
    """Give the lock back once every :func:`acquire` of this process has been matched."""
    path = _lock_path(run_dir)
    if path not in _held:
        return
    file, depth = _held.pop(path)
    if depth > 1:
        _held[path] = (file, depth - 1)
        return
    path.unlink(missing_ok=True)  # before unlocking: a process waiting on this file then sees it gone, retries
    fcntl.flock(file, fcntl.LOCK_UN)
    file.close()
    os.environ.pop(TOKEN_ENV, None)


def _release_all() -> None:
    for path in list(_held):
        _held[path] = (_held[path][0], 1)
        release(path.parent)


@contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[bool]:
    """Hold ``run_dir``'s lock for the block; yields False for a DDP rank that joins its run (see module doc)."""
    owner = acquire(run_dir)
    try:
        yield owner
    finally:
        if owner:
            release(run_dir)
