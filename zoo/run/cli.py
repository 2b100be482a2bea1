"""Command-line error reporting for ``train.py`` and ``eval.py``, and the checks Hydra runs before any job."""

import errno
import importlib.metadata
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError, StorageError, ZooError

FULL = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_WHERE = "point hydra.run.dir (run files) or data.data_dir (datasets) at another folder"


def storage_message(err: BaseException) -> str | None:
    """One line for a full disk or a folder Zoo may not write (anywhere in ``err``'s chain); None for other errors."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, ZooError):
            where = seen.filename or "a file"
            if seen.errno in FULL:
                return f"No space left on the device while writing {where}: free some space there, or {_WHERE}."
            if seen.errno in DENIED:
                return (f"Cannot write {where}: {seen.strerror or 'permission denied'} (read-only or not yours). "
                        f"Make it writable, or {_WHERE}.")
        if isinstance(seen, RuntimeError) and "file write failed" in str(seen):  # torch.save on a full disk
            return f"Writing a file failed ({str(seen).splitlines()[0]}): the disk is probably full: free space, or {_WHERE}."
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a full disk or an unwritable folder into a :class:`~zoo.errors.StorageError` naming the file and the fix.

    Also a decorator (``@storage_errors()``).
    """
    try:
        yield
    except (OSError, RuntimeError) as err:
        message = None if isinstance(err, ZooError) else storage_message(err)
        if message is None:
            raise
        raise StorageError(message) from err


class InstallError(ZooError, RuntimeError):
    """Installed packages that do not work together (e.g. torch and torchvision built for different devices)."""


# What torchvision raises when it was built against another torch (e.g. a CPU torch beside a CUDA torchvision).
TORCH_MISMATCH = ("operator torchvision::", "PyTorch and torchvision were compiled with different")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def install_message(err: BaseException) -> str | None:
    """One line for a torch and a torchvision that do not match (anywhere in ``err``'s chain); None otherwise."""
    seen: BaseException | None = err
    while seen is not None and not any(text in str(seen) for text in TORCH_MISMATCH):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    torch = _version("torch")
    variant = torch.partition("+")[2]  # cpu, cu126, ... (PyPI's default wheels have none)
    index = f" --index-url https://download.pytorch.org/whl/{variant}" if variant else ""
    return (f"torch {torch} and torchvision {_version('torchvision')} do not work together "
            f"({str(seen).splitlines()[0]}): reinstall both from the same index, e.g. "
            f"pip install --force-reinstall torch=={torch.partition('+')[0]} torchvision{index}")


@contextmanager
def install_errors() -> Iterator[None]:
    """Turn a broken PyTorch install (torch and torchvision that disagree) into an :class:`InstallError`."""
    try:
        yield
    except Exception as err:
        message = None if isinstance(err, ZooError) else install_message(err)
        if message is None:
            raise
        raise InstallError(message) from err


@contextmanager
def reported_as_message() -> Iterator[None]:
    """In ``train.py``/``eval.py``: bad input ends the run with its message alone and exit code 2.

    Covers every :class:`~zoo.errors.ZooError` (settings, checkpoints, data files, a NaN loss, a full disk) and a
    broken PyTorch install (:class:`InstallError`): their messages say what to do, a traceback would only hide that.
    Other errors, and every error with ``HYDRA_FULL_ERROR=1``, propagate unchanged.
    """
    try:
        with install_errors(), storage_errors():
            yield
    except ZooError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        exit_with_message(err)
    except InstantiationException as err:  # a constructor refused its arguments: its own message, not Hydra's
        cause = err.__cause__
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or not isinstance(cause, ValueError):
            raise
        target = re.search(r"target '([\w.]+)'", str(err))
        exit_with_message(cause if isinstance(cause, ZooError) else ConfigError(
            f"{target.group(1).rsplit('.', 1)[-1] + ': ' if target else ''}{cause}"))


def exit_with_message(err: ZooError) -> NoReturn:
    """End the process with ``err``'s message alone and exit code 2."""
    logging.getLogger("zoo").error("%s: %s", type(err).__name__, err)
    raise SystemExit(2) from err


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
        raise StorageError(storage_message(err) or f"Cannot write into {folder} ({err}): {_WHERE}.") from err


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
