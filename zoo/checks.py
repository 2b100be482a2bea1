"""Checks run before anything is built: hyperparameter ranges, and that a checkpoint fits the model.

Hyperparameters are checked by key name wherever they sit in the composed config, so a new model or
dataset config is covered without code: any ``lr`` must be positive, any ``dropout`` in ``[0, 1)``, any
``*hidden*``/``*channels`` size positive, any ``batch_size`` at least 1, and so on (see :data:`RULES`).
"""

import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.registry import CONFIG_DIR, ConfigError

Check = Callable[[float], bool]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# (key pattern matched against the last part of the dotted key, value test, what it must be, integer only)
RULES: list[tuple[str, Check, str, bool]] = [
    (r"(.*_)?lr|learning_rate", lambda v: v > 0 and math.isfinite(v), "must be > 0", False),
    (r"weight_decay|momentum|gradient_clip_val", lambda v: 0 <= v < math.inf, "must be >= 0", False),
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


# ----------------------------------------------------------------------------------------- checkpoints
def net_class(module: torch.nn.Module) -> str:
    """Import path of a network's class, e.g. ``zoo.mlp.MLP``."""
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _model_names(net_target: str) -> list[str]:
    """Model config names whose network is ``net_target`` (for messages)."""
    import yaml

    found = []
    for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        net = (yaml.safe_load(path.read_text()) or {}).get("net") or {}
        if net.get("_target_") == net_target:
            found.append(path.stem)
    return found


def _describe(net_target: str) -> str:
    names = _model_names(net_target)
    return f"model={'|'.join(names)} ({net_target})" if names else net_target


def check_checkpoint(path: str | Path, model: torch.nn.Module, cfg: DictConfig | None = None) -> None:
    """Raise :class:`ConfigError` when ``path`` is unreadable or holds the weights of another model.

    Compares the network class recorded by the task (``checkpoint["zoo"]["net"]``), then the names and
    shapes of every weight, so a checkpoint of the same class with other sizes is refused too.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise ConfigError(
            f"ckpt_path={path} cannot be read as a Lightning checkpoint ({type(err).__name__}: {err}). It may be "
            f"truncated by a crash during saving or not be a checkpoint: pick another .ckpt file of the run."
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"ckpt_path={path} is not a Lightning checkpoint (it has no state_dict).")
    run_model = cfg.get("model_name") if cfg is not None else None
    ours = net_class(getattr(model, "net", model))
    theirs = (ckpt.get("zoo") or {}).get("net")
    if theirs is not None and theirs != ours:
        raise ConfigError(
            f"ckpt_path={path} is a checkpoint of {_describe(theirs)}, but this run builds "
            f"model={run_model or '?'} ({ours}). Use {_describe(theirs).split(' ')[0]} with this checkpoint, or "
            f"give a checkpoint of model={run_model}."
        )
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    if expected != stored:
        diff = sorted(set(expected.items()) ^ set(stored.items()))[:4]
        raise ConfigError(
            f"ckpt_path={path} holds weights that do not fit model={run_model or ours} as configured "
            f"(first differences, name and shape: {diff}). It was saved by another model or with other sizes: "
            f"give the same model settings as the run that wrote it (see its .hydra/overrides.yaml)."
        )


# ------------------------------------------------------------------------------------ command line
@contextmanager
def reported_as_message() -> Iterator[None]:
    """In ``train.py``/``eval.py``: bad input ends the run with its message alone and exit code 2.

    Covers :class:`ConfigError` (settings, checkpoints), ``DataNotFoundError`` (missing or broken data files)
    and ``NonFiniteLossError``: their messages say what to do, a traceback would only hide that. Other
    errors, and every error with ``HYDRA_FULL_ERROR=1``, propagate unchanged.
    """
    from datamodules.vision import DataNotFoundError
    from zoo.finite_loss import NonFiniteLossError

    try:
        yield
    except (ConfigError, DataNotFoundError, NonFiniteLossError) as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        logging.getLogger("zoo").error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from err
