"""How checkpoints are written: whole or not at all, and under a run directory that may move."""

import os
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from zoo.files import atomic_write


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

            best = moved(state_dict.get("best_model_path"))
            if isinstance(best, str) and os.path.isfile(best):  # else a new run continues another's checkpoint:
                state_dict = {  # Lightning then ranks this run's files only, and never removes one of that run's
                    **state_dict, "dirpath": self.dirpath,
                    **{k: moved(state_dict.get(k)) for k in ("best_model_path", "kth_best_model_path",
                                                             "last_model_path") if k in state_dict},
                    "best_k_models": {moved(p): s for p, s in (state_dict.get("best_k_models") or {}).items()}}
        super().load_state_dict(state_dict)
