"""Content keys for processed-data caches: a cache is reused only for the raw files and options it was built from.

A cache file that cannot be loaded (truncated, overwritten) is deleted and rebuilt from the raw files
(:class:`CheckedCache`, :func:`open_cache`).
"""

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

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
    """A processed cache file exists but cannot be loaded; ``path`` names it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path} cannot be loaded")
        self.path = Path(path)


class CheckedCache:
    """Mixin for a PyG ``InMemoryDataset``: a processed file that fails to load raises :class:`CorruptCacheError`."""

    def load(self, path: str, *args: Any, **kwargs: Any) -> None:
        try:
            super().load(path, *args, **kwargs)  # type: ignore[misc]
        except PermissionError:
            raise
        except Exception as err:  # noqa: BLE001 - truncated zip, garbage bytes, another object: all unusable
            raise CorruptCacheError(path) from err


def open_cache(make: Callable[[bool], D]) -> D:
    """``make(False)``, the dataset from its cache; if that cache is corrupt, one warning, the file deleted and
    ``make(True)``: PyG's ``force_reload`` processes the raw files again (their own errors then apply)."""
    try:
        return make(False)
    except CorruptCacheError as err:
        log.warning("Corrupt cache %s (%s on loading): deleted, rebuilding it from the raw files.", err.path,
                    type(err.__cause__).__name__)
        err.path.unlink(missing_ok=True)
        return make(True)
