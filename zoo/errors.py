"""Every error Zoo reports to its users as a one-line message (exit code 2, no traceback).

Each message names the key or file at fault and says what to do. ``train.py`` and ``eval.py`` turn any
:class:`ZooError` into that message (``zoo.run.cli.reported_as_message``).
"""


class ZooError(Exception):
    """Base class: bad input or a fault Zoo detected; the message says how to fix it."""


class ConfigError(ZooError, ValueError):
    """A configuration that cannot run; the message names the key and what to use instead."""


class DataNotFoundError(ZooError, FileNotFoundError):
    """The dataset's files are missing or unusable; the message says how to get them."""


class NonFiniteLossError(ZooError, FloatingPointError):
    """The training loss became NaN or infinite; the message says where and what to change."""


class DataError(DataNotFoundError):
    """The dataset's files are present but wrong: another file's or dataset's content, a broken header, counts
    that disagree, labels out of range. The message names the file (and row) and how to get the right one.

    A :class:`DataNotFoundError` too, so code that handles unusable data files catches it.
    """


class DivergedError(ZooError, ArithmeticError):
    """Training ended with a loss far above where it started: the run learned nothing and is not a result."""


class StorageError(ZooError, OSError):
    """A file or folder Zoo must write (or read) is out of reach: disk full, read-only, no permission."""
