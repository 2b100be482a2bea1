"""Hyperparameter ranges, checked before anything is built.

Hyperparameters are checked by key name wherever they sit in the composed config, so a new model or
dataset config is covered without code: any ``lr`` must be positive, any ``dropout`` in ``[0, 1)``, any
``*hidden*``/``*channels`` size positive (and a list of sizes not empty), any ``batch_size`` at least 1, any
``seed`` an integer in ``[0, 2**32)``, and so on (see :data:`RULES`). Settings that are only wrong together
(``trainer.max_epochs=-1`` with nothing else to stop training, more devices than the machine has) are checked
by the functions in :data:`CROSS_CHECKS`.
"""

import math
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError

Check = Callable[[float], bool]
SEED_MAX = 2**32 - 1  # numpy's and Lightning's seed range is [0, 2**32)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fraction_or_count(v: float, low: float) -> bool:
    """Lightning's ``limit_*_batches``: an integer number of batches >= ``low``, or a fraction in ``[low, 1]``."""
    return v >= low and (isinstance(v, int) or v <= 1.0)


# (key pattern matched against the last part of the dotted key, value test, what it must be, integer only).
# `null` passes every rule (it means "off" or "default"), except for the keys in NOT_NULL; an empty list of
# sizes is refused (see EMPTY_LISTS).
RULES: list[tuple[str, Check, str, bool]] = [
    (r"seed", lambda v: 0 <= v <= SEED_MAX, f"must be an integer in [0, {SEED_MAX}] (or null: a random seed)", True),
    (r".*_seed", lambda v: 0 <= v <= SEED_MAX, f"must be an integer in [0, {SEED_MAX}]", True),
    (r"train_frac", lambda v: 0 < v < 1, "must be in (0, 1)", False),
    (r".*_frac", lambda v: 0 <= v < 1, "must be in [0, 1)", False),
    (r"limit_train_batches", lambda v: _fraction_or_count(v, 0) and v > 0,
     "must be > 0: a number of batches >= 1 or a fraction in (0, 1] (0 trains nothing; use train=false to "
     "only test a checkpoint)", False),
    (r"limit_(val|test|predict)_batches", lambda v: _fraction_or_count(v, 0),
     "must be a number of batches >= 0 or a fraction in [0, 1]", False),
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
    (r"max_steps", lambda v: v >= 1 or v == -1, "must be >= 1 (or -1: no step limit)", True),
    (r"min_epochs|log_every_n_steps", lambda v: v >= 0, "must be >= 0", True),
    (r"check_val_every_n_epoch|epochs_per_round|max_rounds|num_nodes", lambda v: v >= 1, "must be >= 1", True),
]
_COMPILED = [(re.compile(p), test, must, integer) for p, test, must, integer in RULES]
_INTERPOLATION = re.compile(r"\$\{.*\}")
# Keys whose null is not "off": the split would change from run to run.
NOT_NULL = re.compile(r".*_seed")
# Lists of layer sizes that must hold at least one size, and what to use instead of an empty one.
EMPTY_LISTS: dict[str, str] = {
    r".*hidden.*": "must hold at least one size (a network without hidden layers is model=logreg)",
    r".*channels": "must hold at least one size",
}


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` for every leaf of a plain container (list items as ``key[i]``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list | tuple) and node:
        for i, item in enumerate(node):
            yield from _leaves(item, f"{prefix}[{i}]")
    else:
        yield prefix, node


def hparam_errors(cfg: DictConfig) -> list[str]:
    """One ``key=value: must be ...`` line per setting out of range (``hydra`` and ``paths`` are skipped)."""
    errors: list[str] = []
    # Unresolved: a value that is an interpolation (``split_seed: ${seed}``) is checked where it is set.
    sections = OmegaConf.to_container(cfg, resolve=False)
    for section, node in sections.items():
        if section in ("hydra", "paths"):
            continue
        for key, value in _leaves({section: node}, ""):
            if isinstance(value, str) and _INTERPOLATION.fullmatch(value):
                continue
            name = re.sub(r"(\[\d+\])+$", "", key.rsplit(".", 1)[-1])
            if isinstance(value, list | tuple):  # an empty list (non-empty ones yield their items)
                errors += [f"{key}=[]: {must}" for p, must in EMPTY_LISTS.items() if re.fullmatch(p, name)][:1]
                continue
            if value is None:
                if NOT_NULL.fullmatch(name):
                    errors.append(f"{key}=null: must be an integer (a fixed seed)")
                continue
            for pattern, test, must, integer in _COMPILED:
                if not pattern.fullmatch(name):
                    continue
                if not _number(value) or (integer and not _integer(value)):
                    kind = "an integer" if integer else "a number"
                    errors.append(f"{key}={value!r}: " + (must if must.startswith(f"must be {kind}") else
                                                          f"must be {kind} ({must.removeprefix('must be ')})"))
                elif not test(value):
                    errors.append(f"{key}={value}: {must}")
                break  # the first matching rule decides
    return errors


def _select(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, default=None)
    except Exception:  # an unresolvable interpolation is reported where it is used
        return None


# What else ends training when trainer.max_epochs=-1 (model.max_rounds: the delineation model's rounds).
EPOCH_LIMIT_STOPPERS: tuple[str, ...] = ("trainer.max_steps", "trainer.max_time", "model.max_rounds")


def endless_training(cfg: DictConfig) -> list[str]:
    """``trainer.max_epochs=-1`` needs something else that stops training."""
    if _select(cfg, "trainer.max_epochs") != -1:
        return []
    if any(_select(cfg, key) not in (None, -1) for key in EPOCH_LIMIT_STOPPERS):
        return []
    return ["trainer.max_epochs=-1: would train forever: give a number of epochs, or set trainer.max_steps=N or "
            "trainer.max_time=DD:HH:MM:SS to end it (models trained in rounds stop themselves)"]


def nothing_tested(cfg: DictConfig) -> list[str]:
    """``test=true`` with ``trainer.limit_test_batches=0`` would end without a test result."""
    if cfg.get("test", True) and _select(cfg, "trainer.limit_test_batches") in (0, 0.0):
        return ["trainer.limit_test_batches=0: the run would test nothing and have no result: use test=false to skip "
                "testing, or a number of batches >= 1 (or a fraction in (0, 1])"]
    return []


def available_devices(accelerator: str) -> tuple[str, int]:
    """``(kind, count)`` of the devices ``trainer.accelerator`` would use on this machine."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "GPU", torch.cuda.device_count()
    if accelerator in ("cpu", "auto"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return "CPU core", cores or 1
    return accelerator, -1  # tpu, mps, ...: Lightning checks them


def too_many_devices(cfg: DictConfig) -> list[str]:
    """More devices than this machine has (Lightning would start processes for devices that do not exist)."""
    accelerator, devices = str(_select(cfg, "trainer.accelerator") or "auto"), _select(cfg, "trainer.devices")
    kind, count = available_devices(accelerator)
    if count < 0:
        return []
    if count == 0:
        return [f"trainer.accelerator={accelerator}: no {kind} is visible on this machine: use trainer=cpu "
                f"(or run where {kind}s are visible; check CUDA_VISIBLE_DEVICES)"]
    if devices is None or devices == "auto":
        return []
    if isinstance(devices, str) and "," in devices:  # "0,2": GPU indices
        devices = [d for d in devices.split(",") if d.strip()]
    if OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        try:
            wanted = [int(d) for d in devices]
        except (TypeError, ValueError):
            return [f"trainer.devices={list(devices)}: a list of devices must hold GPU indices (integers)"]
        bad = [d for d in wanted if not 0 <= d < count]
        return [f"trainer.devices={wanted}: {kind} indices {bad} do not exist (this machine has {count}: "
                f"0..{count - 1})"] if bad and kind == "GPU" else []
    try:
        wanted = int(str(devices).rstrip(","))
    except ValueError:
        return [f"trainer.devices={devices!r}: must be a number of devices, a list of GPU indices, -1 or auto"]
    if wanted == -1 and kind == "GPU":
        return []
    if wanted < 1:
        every = " (or -1/auto: every visible GPU)" if kind == "GPU" else " (on a CPU: the number of processes)"
        return [f"trainer.devices={devices}: must be >= 1{every}"]
    if wanted > count:
        return [f"trainer.devices={wanted}: this machine has {count} {kind}{'s' if count != 1 else ''}: set "
                f"trainer.devices={count} or fewer" + (" (or trainer=cpu)" if kind == "GPU" else "")]
    return []


# Checks of settings that are only wrong together: each returns its `key=value: what to do` lines.
CROSS_CHECKS: list[Callable[[DictConfig], list[str]]] = [endless_training, nothing_tested, too_many_devices]


def check_hparams(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` naming every out-of-range setting, e.g. ``model.optimizer.lr=-0.1: must be > 0``."""
    errors = hparam_errors(cfg) + [e for check in CROSS_CHECKS for e in check(cfg)]
    if errors:
        raise ConfigError(f"Invalid setting{'s' if len(errors) > 1 else ''} (fix on the command line or in the "
                          f"config): " + "; ".join(errors))
