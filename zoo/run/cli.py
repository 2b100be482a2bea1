"""Command-line error reporting for ``train.py`` and ``eval.py``."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from zoo.errors import ZooError


@contextmanager
def reported_as_message() -> Iterator[None]:
    """In ``train.py``/``eval.py``: bad input ends the run with its message alone and exit code 2.

    Covers every :class:`~zoo.errors.ZooError` (settings, checkpoints, data files, a NaN loss): their messages
    say what to do, a traceback would only hide that. Other errors, and every error with
    ``HYDRA_FULL_ERROR=1``, propagate unchanged.
    """
    try:
        yield
    except ZooError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        exit_with_message(err)


def exit_with_message(err: ZooError) -> NoReturn:
    """End the process with ``err``'s message alone and exit code 2."""
    logging.getLogger("zoo").error("%s: %s", type(err).__name__, err)
    raise SystemExit(2) from err
