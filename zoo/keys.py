"""Config keys that never change a run's result (the one table that resume, eval, sweeps and the report read),
and dotted keys under one another."""

import fnmatch
from collections.abc import Mapping
from typing import Any

# Dotted keys (fnmatch patterns; a key also covers everything under it): where files go, what is shown or logged,
# how a run is started, resumed or checked. A resume may change them freely, a finished sweep may be re-run with
# other values, and the report groups runs without them. Callbacks observe a run (figures, predictions, checks),
# except those in SELECTING.
NEUTRAL: tuple[str, ...] = (
    "hydra", "paths", "facts", "logger", "extras", "run_name", "tags", "ckpt_path", "auto_resume", "resume_accept",
    "max_requeues", "train", "test", "threads", "optimized_metric", "callbacks",
    "data.data_dir", "data.download", "data.eval_batch_size",
    "trainer.accelerator", "trainer.default_root_dir", "trainer.enable_progress_bar", "trainer.enable_model_summary",
    "trainer.log_every_n_steps", "trainer.profiler", "trainer.plugins", "*.dirpath", "*.save_dir",
)
# Callback keys that do change a result: which checkpoint is tested, when training stops.
SELECTING: tuple[str, ...] = ("callbacks.model_checkpoint.monitor", "callbacks.model_checkpoint.mode",
                              "callbacks.early_stopping")
GROUP_OF = {"model_name": "model", "data_name": "data"}  # names that follow their config group


def under(key: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    """Whether the dotted ``key`` is one of ``prefixes`` or lies under one (``""``: every key)."""
    key = GROUP_OF.get(key, key)
    return any(p in ("", key) or key.startswith(p + ".") for p in prefixes)


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(key, p + ".*") for p in patterns)


def neutral(key: str) -> bool:
    """Whether the dotted ``key`` (e.g. ``callbacks.progress_bar.refresh_rate``) never changes a result; a key
    that holds one that does (``callbacks=early_stopping``) may change it."""
    return _matches(key, NEUTRAL) and not _matches(key, SELECTING) and not any(
        fnmatch.fnmatchcase(selecting, key + ".*") for selecting in SELECTING)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.key: leaf}`` of nested mappings (a config as plain containers); lists and empty mappings are leaves."""
    if isinstance(node, Mapping) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}
