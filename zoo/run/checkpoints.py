"""Reading a checkpoint, and checking that it fits the model (written by zoo/callbacks/checkpoint.py)."""

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from zoo.errors import ConfigError
from zoo.registry import models_of
from zoo.tasks.classifier import net_class


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents (memory-mapped, plain tensors and containers only); :class:`ConfigError` if it
    is unreadable (e.g. truncated) or not a Lightning checkpoint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise ConfigError(f"ckpt_path={path} cannot be read as a Lightning checkpoint ({type(err).__name__}: "
                          f"{err}). It may be truncated by a crash during saving or not be a checkpoint: "
                          f"pick another .ckpt file of the run.") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"ckpt_path={path} is not a Lightning checkpoint (it has no state_dict).")
    return ckpt


def other_model_error(path: str | Path, theirs: str, ours: str, run_model: str | None) -> ConfigError:
    """The error for a checkpoint of network class ``theirs`` given to a run that builds ``ours``."""
    return ConfigError(f"ckpt_path={path} is a checkpoint of {models_of(theirs)}, but this run builds "
                       f"model={run_model or '?'} ({ours}). Use {models_of(theirs).split(' ')[0]} with this "
                       f"checkpoint, or give a checkpoint of model={run_model}.")


def check_checkpoint(path: str | Path, model: torch.nn.Module, cfg: DictConfig, ckpt: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` when ``ckpt`` (read from ``path``) holds another model's weights: another
    network class (``ckpt["zoo"]["net"]``), or other weight names or shapes (names only: ``resizable_state``)."""
    run_model = cfg.get("model_name")
    ours = net_class(getattr(model, "net", model))
    theirs = (ckpt.get("zoo") or {}).get("net")
    if theirs is not None and theirs != ours:
        raise other_model_error(path, theirs, ours, run_model)
    resizable = set(getattr(model, "resizable_state", ()))  # e.g. the delineation task's per-round tracks
    expected, stored = ({k: None if k in resizable else tuple(v.shape) for k, v in state.items()}
                        for state in (model.state_dict(), ckpt["state_dict"]))
    if expected != stored:
        diff = sorted(set(expected.items()) ^ set(stored.items()))[:4]
        raise ConfigError(f"ckpt_path={path} holds weights that do not fit model={run_model or ours} as "
                          f"configured (first differences, name and shape: {diff}). It was saved by another "
                          f"model or with other sizes: give the same model settings as the run that wrote it "
                          f"(see its .hydra/overrides.yaml).")
