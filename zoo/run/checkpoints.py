"""Checkpoints: writing that a crash or kill cannot leave half done, a checkpoint callback that follows a moved run
directory, and checks that a checkpoint fits the model."""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig

from zoo.errors import ConfigError
from zoo.run.compatibility import CONFIG_DIR
from zoo.run.files import atomic_write
from zoo.tasks.classifier import net_class


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in its folder, syncs it to disk, then renames it.

    ``os.replace`` within one folder is atomic, so ``last.ckpt`` is always either the previous complete
    checkpoint or the new complete one, even when the process is killed or the machine loses power
    mid-save. (Lightning's default writes through a temporary file in the system temp folder, which is a
    copy, not a rename, when that folder is on another disk.) Remote paths (``s3://`` ...) use the default.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if "://" in str(path) or storage_options is not None:
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_write(path, lambda f: torch.save(checkpoint, f))


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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint's contents (memory-mapped, plain tensors and containers only).

    Raises:
        ConfigError: ``path`` is unreadable (e.g. truncated) or not a Lightning checkpoint.
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
    return ckpt


def other_model_error(path: str | Path, theirs: str, ours: str, run_model: str | None) -> ConfigError:
    """The error for a checkpoint of network class ``theirs`` given to a run that builds ``ours``."""
    return ConfigError(
        f"ckpt_path={path} is a checkpoint of {_describe(theirs)}, but this run builds "
        f"model={run_model or '?'} ({ours}). Use {_describe(theirs).split(' ')[0]} with this checkpoint, or "
        f"give a checkpoint of model={run_model}."
    )


def check_checkpoint(path: str | Path, model: torch.nn.Module, cfg: DictConfig | None = None,
                     ckpt: dict[str, Any] | None = None) -> None:
    """Raise :class:`ConfigError` when ``path`` is unreadable or holds the weights of another model.

    Compares the network class recorded by the task (``checkpoint["zoo"]["net"]``), then the names and
    shapes of every weight, so a checkpoint of the same class with other sizes is refused too (the names only
    for the task's ``resizable_state``). ``ckpt``: its contents, when already read.
    """
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    run_model = cfg.get("model_name") if cfg is not None else None
    ours = net_class(getattr(model, "net", model))
    theirs = (ckpt.get("zoo") or {}).get("net")
    if theirs is not None and theirs != ours:
        raise other_model_error(path, theirs, ours, run_model)
    resizable = set(getattr(model, "resizable_state", ()))  # e.g. the delineation task's per-round tracks

    def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...] | None]:
        return {k: None if k in resizable else tuple(v.shape) for k, v in state.items()}

    expected, stored = shapes(model.state_dict()), shapes(ckpt["state_dict"])
    if expected != stored:
        diff = sorted(set(expected.items()) ^ set(stored.items()))[:4]
        raise ConfigError(
            f"ckpt_path={path} holds weights that do not fit model={run_model or ours} as configured "
            f"(first differences, name and shape: {diff}). It was saved by another model or with other sizes: "
            f"give the same model settings as the run that wrote it (see its .hydra/overrides.yaml)."
        )


class RunCheckpoint(ModelCheckpoint):
    """:class:`ModelCheckpoint` that follows its run directory when the directory is copied or moved.

    Lightning restores ``best_model_path``, ``best_k_models`` and ``last_model_path`` only when ``dirpath`` is
    unchanged; after a move it forgets them, writes ``last-v1.ckpt`` beside the stale ``last.ckpt`` and tests
    a best checkpoint in the old place. Here the saved paths are moved to the new ``dirpath`` first. (Set
    ``enable_version_counter: false`` too: ``last.ckpt`` is then always the newest.)
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and os.path.realpath(old) != os.path.realpath(self.dirpath):

            def moved(path: Any) -> Any:
                if not isinstance(path, str) or not path.startswith(old + os.sep):
                    return path
                return os.path.join(self.dirpath, os.path.relpath(path, old))

            state_dict = {**state_dict, "dirpath": self.dirpath,
                          **{k: moved(state_dict.get(k)) for k in ("best_model_path", "kth_best_model_path",
                                                                   "last_model_path") if k in state_dict},
                          "best_k_models": {moved(p): s for p, s in (state_dict.get("best_k_models") or {}).items()}}
        super().load_state_dict(state_dict)
