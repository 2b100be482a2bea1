"""Content keys for processed-data caches: a cache is reused only for the raw files and options it was built from."""

import hashlib
from collections.abc import Iterable
from pathlib import Path


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
