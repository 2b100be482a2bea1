"""Range checks of constructor arguments (pure Python; booleans are not numbers): each returns a good value or
raises ``ValueError("<name>=<value>: must be ...")`` (the run layer puts the config path in front)."""

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

SEED_MAX = 2**32 - 1  # numpy's and Lightning's seed range is [0, 2**32)


def is_integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as a message shows it: numbers plainly, ``null`` for None, anything else as its repr."""
    return "null" if value is None else str(value) if is_number(value) else repr(value)


def integer(name: str, value: Any, low: int = 1, note: str = "") -> int:
    """``value`` if it is an integer ``>= low``; ``note`` ends the message (e.g. ``" (0: no hidden layer)"``)."""
    if not is_integer(value):
        raise ValueError(f"{name}={shown(value)}: must be an integer >= {low}{note}")
    if value < low:
        raise ValueError(f"{name}={value}: must be >= {low}{note}")
    return value


def number(name: str, value: Any, low: float = -math.inf, high: float = math.inf, *, open_low: bool = False,
           open_high: bool = False) -> float:
    """``value`` if it is a finite number between ``low`` and ``high`` (each bound included unless ``open_*``)."""
    if math.isinf(high):
        bounds = "" if math.isinf(low) else f"{'>' if open_low else '>='} {low:g}"
    else:
        bounds = f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
    if not is_number(value) or not math.isfinite(value):
        kind = "a finite number" if is_number(value) else "a number"
        raise ValueError(f"{name}={shown(value)}: must be {kind}{' ' + bounds if bounds else ''}")
    too_low = value <= low if open_low else value < low
    too_high = value >= high if open_high else value > high
    if too_low or too_high:
        raise ValueError(f"{name}={value}: must be {bounds}")
    return value


def fraction(name: str, value: Any) -> float:
    """A probability that must leave something, as a dropout: a number in ``[0, 1)``."""
    return number(name, value, 0, 1, open_high=True)


def sizes(name: str, value: Any, empty: str = "") -> list[int]:
    """A non-empty list of layer sizes, each an integer ``>= 1``; ``empty`` ends the message for ``[]``."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name}={shown(value)}: must be a list of integers >= 1")
    if len(value) == 0:
        raise ValueError(f"{name}=[]: must hold at least one size{empty}")
    return [integer(f"{name}[{i}]", v) for i, v in enumerate(value)]


def seed(name: str, value: Any, allow_null: bool = False) -> int | None:
    """An integer in ``[0, SEED_MAX]``; null only with ``allow_null`` (a random seed), else refused (a fixed seed)."""
    if value is None and allow_null:
        return None
    if value is None:
        raise ValueError(f"{name}=null: must be an integer (a fixed seed)")
    if not is_integer(value) or not 0 <= value <= SEED_MAX:
        null = " (or null: a random seed)" if allow_null else ""
        raise ValueError(f"{name}={shown(value)}: must be an integer in [0, {SEED_MAX}]{null}")
    return value


def choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    if isinstance(value, bool) or value not in choices:  # True == 1: a boolean is no choice of 1 or 2
        raise ValueError(f"{name}={shown(value)}: must be one of {', '.join(map(str, choices))}")
    return value
