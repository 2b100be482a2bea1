"""Content keys for processed-data caches: a cache is reused only for the raw files and options it was built from.

Every file of a cache folder is checked before use: a processed file that cannot be loaded (truncated, empty,
garbage), one that holds another dataset's cache (copied over under this name), and PyG's side files
``pre_transform.pt``/``pre_filter.pt`` that cannot be read are deleted and rebuilt from the raw files with one
warning line (:class:`CheckedCache`, :func:`open_cache`).
"""

import errno
import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch_geometric.data import InMemoryDataset
from torch_geometric.io import fs

log = logging.getLogger(__name__)
D = TypeVar("D")


def content_key(paths: Iterable[Path], *options: object, length: int = 16) -> str:
    """Hex digest of the files' names and bytes and of ``options`` (their ``repr``): part of a cache file's name.

    A raw file edited, replaced or swapped with another, or a preprocessing option changed, gives another key,
    so the cache built from the old inputs is not read.
    """
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    for option in options:
        h.update(repr(option).encode() + b"\0")
    return h.hexdigest()[:length]


class CorruptCacheError(Exception):
    """A processed cache file exists but cannot be used; ``path`` names it, ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str = "") -> None:
        super().__init__(f"{path} cannot be loaded" + (f": {reason}" if reason else ""))
        self.path = Path(path)
        self.reason = reason


SIDE_FILES = ("pre_transform.pt", "pre_filter.pt")  # PyG writes them beside the processed file, reads them first


def cache_identity(dataset_class: type, path: str | os.PathLike) -> str:
    """What a cache file says it holds: the dataset class and the file's own name (which carries the raw files'
    content key). A cache copied over another dataset's name, or built from other raw files, says something else."""
    return f"{dataset_class.__qualname__}/{Path(path).name}"


def _read_only(err: OSError, where: str) -> PermissionError:
    return PermissionError(errno.EACCES, f"{where} is read-only ({err.strerror or err})", err.filename)


class CheckedCache:
    """Mixin for a PyG ``InMemoryDataset`` whose cache files are checked before use.

    The processed file carries :func:`cache_identity`; one that fails to load, or says it holds another dataset,
    raises :class:`CorruptCacheError`. An unreadable ``pre_transform.pt``/``pre_filter.pt`` is deleted (one
    warning) and the dataset processed again. A read-only folder raises ``PermissionError`` naming it.
    """

    def _process(self) -> None:
        bad = []
        for name in SIDE_FILES:
            path = Path(self.processed_dir) / name  # type: ignore[attr-defined]
            if path.exists():
                try:
                    torch.load(path, weights_only=True)  # PyG stores a str (the transform's repr)
                except Exception as err:  # noqa: BLE001 - truncated, empty, garbage: all unusable
                    bad.append(f"{path} ({type(err).__name__})")
                    try:
                        path.unlink()
                    except OSError as unlink_err:
                        raise _read_only(unlink_err, str(path.parent)) from unlink_err
        if bad:
            log.warning("Corrupt cache %s on loading: deleted, rebuilding it from the raw files.", ", ".join(bad))
            self.force_reload = True  # process again: the processed file was built beside unreadable side files
        try:
            super()._process()  # type: ignore[misc]
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise _read_only(err, self.processed_dir) from err  # type: ignore[attr-defined]
            raise

    @classmethod
    def save(cls, data_list: Any, path: str) -> None:
        """PyG's ``InMemoryDataset.save``, plus the file's :func:`cache_identity` as a fourth item."""
        data, slices = InMemoryDataset.collate(data_list)
        fs.torch_save((data.to_dict(), slices, data.__class__, cache_identity(cls, path)), path)

    def load(self, path: str, *args: Any, **kwargs: Any) -> None:
        try:
            out = fs.torch_load(path)
        except PermissionError:
            raise
        except Exception as err:  # noqa: BLE001 - truncated zip, garbage bytes: all unusable
            raise CorruptCacheError(path, f"{type(err).__name__} on loading") from err
        expected = cache_identity(type(self), path)
        found = out[3] if isinstance(out, tuple) and len(out) == 4 and isinstance(out[3], str) else None
        if found != expected:
            what = f"it holds {found!r}" if found else "it does not say which dataset it holds"
            raise CorruptCacheError(path, f"{what}, not {expected!r}")
        data, self.slices, data_cls = out[:3]  # type: ignore[attr-defined]
        self.data = data_cls.from_dict(data)  # type: ignore[attr-defined]


def open_cache(make: Callable[[bool], D]) -> D:
    """``make(False)``, the dataset from its cache; if that cache is unusable, one warning, the file deleted and
    ``make(True)``: PyG's ``force_reload`` processes the raw files again (their own errors then apply)."""
    try:
        return make(False)
    except CorruptCacheError as err:
        log.warning("Corrupt cache %s (%s): deleted, rebuilding it from the raw files.", err.path,
                    err.reason or "cannot be loaded")
        err.path.unlink(missing_ok=True)
        return make(True)
