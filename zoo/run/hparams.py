"""Hyperparameter ranges, checked before anything is built.

Hyperparameters are checked by key name wherever they sit in the composed config, so a new model or
dataset config is covered without code: any ``lr`` must be positive, any ``dropout`` in ``[0, 1)``, any
``*hidden*``/``*channels`` size positive, any ``batch_size`` at least 1, and so on (see :data:`RULES`).
"""

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError

Check = Callable[[float], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# (key pattern matched against the last part of the dotted key, value test, what it must be, integer only)
RULES: list[tuple[str, Check, str, bool]] = [
    (r"(.*_)?lr|learning_rate", lambda v: v > 0 and math.isfinite(v), "must be > 0", False),
    (r"(.*_)?weight_decay|momentum|gradient_clip_val", lambda v: 0 <= v < math.inf, "must be >= 0", False),
    (r"(.*_)?dropout(_.*)?|p_drop", lambda v: 0 <= v < 1, "must be in [0, 1)", False),
    # CNN's `hidden: 0` means "no hidden layer"; every other size must be positive.
    (r"hidden", lambda v: v >= 0, "must be >= 0 (0: no hidden layer)", True),
    (r".*hidden.*|.*channels|num_layers|heads|kernel_size|num_classes|.*_features", lambda v: v >= 1,
     "must be >= 1", True),
    (r"(.*_)?batch_size|accumulate_grad_batches|val_size", lambda v: v >= 1,
     "must be an integer >= 1", True),
    (r"max_epochs", lambda v: v >= 1 or v == -1, "must be >= 1 (or -1 with trainer.max_steps for no epoch limit)",
     True),
    (r"min_epochs|log_every_n_steps", lambda v: v >= 0, "must be >= 0", True),
]
_COMPILED = [(re.compile(p), test, must, integer) for p, test, must, integer in RULES]


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` for every leaf of a plain container (list items as ``key[i]``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _leaves(item, f"{prefix}[{i}]")
    else:
        yield prefix, node


def hparam_errors(cfg: DictConfig) -> list[str]:
    """One ``key=value: must be ...`` line per setting out of range (``hydra`` and ``paths`` are skipped)."""
    errors: list[str] = []
    for section in cfg:
        if section in ("hydra", "paths"):
            continue
        try:
            node = OmegaConf.to_container(cfg[section], resolve=True) if OmegaConf.is_config(cfg[section]) \
                else cfg[section]
        except Exception:  # an unresolvable interpolation is reported where it is used
            continue
        for key, value in _leaves({section: node}, ""):
            name = re.sub(r"(\[\d+\])+$", "", key.rsplit(".", 1)[-1])
            for pattern, test, must, integer in _COMPILED:
                if not pattern.fullmatch(name) or value is None:
                    continue
                if not _number(value) or (integer and not _integer(value)):
                    errors.append(f"{key}={value!r}: must be {'an integer' if integer else 'a number'}")
                elif not test(value):
                    errors.append(f"{key}={value}: {must}")
                break  # the first matching rule decides
    return errors


def check_hparams(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming every out-of-range setting, e.g. ``model.optimizer.lr=-0.1: must be > 0``."""
    errors = hparam_errors(cfg)
    if errors:
        raise ConfigError("Invalid settings (fix them on the command line or in the config):\n  " +
                          "\n  ".join(errors))
