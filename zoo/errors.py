"""The errors Zoo reports as one line (exit code 2, no traceback): the key or file at fault and what to do.
:func:`reported_as_message` turns a :class:`ZooError`, a full disk or a broken PyTorch install into it."""

import errno
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import NoReturn


class ZooError(Exception):
    """Base class: bad input or a fault Zoo detected; the message says how to fix it."""


class ConfigError(ZooError, ValueError):
    """A configuration that cannot run; the message names the key and what to use instead."""


class DataNotFoundError(ZooError, FileNotFoundError):
    """The dataset's files are missing or unusable; the message says how to get them."""


class NonFiniteLossError(ZooError, FloatingPointError):
    """The training loss became NaN or infinite; the message says where and what to change."""


class DataError(DataNotFoundError):
    """The dataset's files are present but wrong: another dataset's, a broken header, bad counts or labels."""


class DivergedError(ZooError, ArithmeticError):
    """Training ended with a loss far above where it started: the run learned nothing and is not a result."""


class StorageError(ZooError, OSError):
    """A file or folder Zoo must write (or read) is out of reach: disk full, read-only, no permission."""


class InstallError(ZooError, RuntimeError):
    """Installed packages that do not work together (torch and torchvision built for different devices)."""


WHERE = "point hydra.run.dir (run files) or data.data_dir (datasets) at another folder"
# What torchvision raises when built against another torch (e.g. a CPU torch beside a CUDA torchvision).
TORCH_MISMATCH = ("operator torchvision::", "PyTorch and torchvision were compiled with different")


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or during."""
    seen: BaseException | None = err
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def storage_message(err: BaseException) -> str | None:
    """One line for a full disk or a folder Zoo may not write (anywhere in ``err``'s chain); None for other errors."""
    for seen in _chain(err):
        if isinstance(seen, OSError) and not isinstance(seen, ZooError):
            where = seen.filename or "a file"
            if seen.errno in (errno.ENOSPC, errno.EDQUOT):
                return f"No space left on the device while writing {where}: free some space there, or {WHERE}."
            if seen.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return (f"Cannot write {where}: {seen.strerror or 'permission denied'} (read-only or not yours). "
                        f"Make it writable, or {WHERE}.")
        if isinstance(seen, RuntimeError) and "file write failed" in str(seen):  # torch.save on a full disk
            return f"Writing a file failed ({str(seen).splitlines()[0]}): the disk is probably full: free space, or {WHERE}."
    return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def install_message(err: BaseException) -> str | None:
    """One line for a torch and a torchvision that do not match (anywhere in ``err``'s chain); None otherwise."""
    seen = next((e for e in _chain(err) if any(text in str(e) for text in TORCH_MISMATCH)), None)
    if seen is None:
        return None
    torch = _version("torch")
    version, _, variant = torch.partition("+")  # variant: cpu, cu126, ... (PyPI's default wheels: none)
    index = (f" --index-url https://download.pytorch.org/whl/{variant} (where that index cannot be reached: "
             "pip install --force-reinstall torch torchvision, PyPI's default wheels)") if variant else ""
    return (f"torch {torch} and torchvision {_version('torchvision')} do not work together "
            f"({str(seen).splitlines()[0]}): reinstall both from the same index, e.g. "
            f"pip install --force-reinstall torch=={version} torchvision{index}")


@contextmanager
def _reraised(kind: type[ZooError], message: Callable[[BaseException], str | None],
              catch: tuple[type[BaseException], ...] = (Exception,)) -> Iterator[None]:
    """Re-raise an error for which ``message`` has a line as ``kind(line)``; anything else unchanged."""
    try:
        yield
    except catch as err:
        line = None if isinstance(err, ZooError) else message(err)
        if line is None:
            raise
        raise kind(line) from err


def storage_errors() -> AbstractContextManager[None]:
    """Turn a full disk or an unwritable folder into a :class:`StorageError`; also a decorator."""
    return _reraised(StorageError, storage_message, (OSError, RuntimeError))


@contextmanager
def reported_as_message() -> Iterator[None]:
    """End the command with a :class:`ZooError`'s message alone and exit code 2 (a full disk and a broken
    PyTorch install become one first). Other errors, and all with ``HYDRA_FULL_ERROR=1``, propagate."""
    try:
        with _reraised(InstallError, install_message), storage_errors():
            yield
    except ZooError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        exit_with_message(err)


@contextmanager
def stops_the_command() -> Iterator[None]:
    """Around a Hydra callback (Hydra turns its errors into a warning and goes on unguarded): a :class:`ZooError`
    ends the command as :func:`reported_as_message` does, any other error with its traceback and exit code 1."""
    try:
        with reported_as_message():
            yield
    except Exception:
        logging.getLogger("zoo").exception("A check that guards this command failed; the command stops.")
        raise SystemExit(1) from None


def exit_with_message(err: ZooError) -> NoReturn:
    """End the process with ``err``'s message alone and exit code 2."""
    logging.getLogger("zoo").error("%s: %s", type(err).__name__, err)
    raise SystemExit(2) from err
