"""Resume or evaluate a checkpoint with the settings it was trained with (docs/reliability.md).

:func:`reconcile` compares the command's config with the one the checkpoint records
(:class:`~zoo.callbacks.run_record.RunRecord`; older checkpoints: their run directory's ``.hydra/config.yaml``),
key by key: a key the command did not set takes the saved value; a key it set to another value that changes the
result (not :func:`zoo.keys.neutral`) is refused unless ``resume_accept`` names it, and then reaches everything it
touches or is refused too.
"""

import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.callbacks.run_record import RunRecord
from zoo.errors import ConfigError
from zoo.keys import flatten, neutral
from zoo.run.checkpoints import other_model_error
from zoo.run.rundir import CHECKPOINT_DIR, HYDRA_DIR, METRICS_FILE, status

log = logging.getLogger(__name__)

_ABSENT = "<absent>"
# What a test result depends on (eval.py): the network and the data, not how it was trained.
EVAL_KEYS = ("model", "model_name", "data", "data_name", "trainer.precision")
TRAINING_ONLY = ("model.optimizer", "model.scheduler", "model.scheduler_monitor", "model.scheduler_interval",
                 "data.batch_size", "data.seed")
GROUP_OF = {"model_name": "model", "data_name": "data"}  # names that follow their config group
RESUMABLE_DATA = ("data.batch_size",)  # data settings a resumed run takes from then on (the data stays the same)


def _under(key: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    key = GROUP_OF.get(key, key)
    return any(p == "" or key == p or key.startswith(p + ".") for p in prefixes)


def matters(key: str, evaluating: bool) -> bool:
    """Whether ``key`` can change the result of a resumed run (or, ``evaluating``, of a test)."""
    if neutral(key):
        return False
    return not evaluating or (_under(key, EVAL_KEYS) and not _under(key, TRAINING_ONLY))


def plain_config(cfg: DictConfig, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """``cfg`` resolved, as plain containers, without Hydra's own settings.

    ``facts``: the dataset facts to resolve ``${facts.*}`` with while the data is not loaded yet (the saved ones:
    the data's own keys are compared, and its facts follow from them).
    """
    if facts is not None and OmegaConf.is_missing(cfg, "facts"):
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.facts = facts
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    return container


def explicit_keys(cfg: DictConfig) -> list[str]:
    """Config keys the command line set: ``model=cnn`` -> ``model``; a group with no key of its own
    (``experiment=...``) -> every key (``""``). Without Hydra's record, every key counts as set."""
    if "hydra" in cfg and cfg.hydra.get("overrides") is not None:
        overrides = list(cfg.hydra.overrides.task)
    elif HydraConfig.initialized():
        overrides = list(HydraConfig.get().overrides.task)
    else:
        return [""]
    keys = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0].replace("/", ".")  # model/scheduler=...
        if key.startswith("hydra.") or key == "hydra":
            continue
        keys.append(key if OmegaConf.select(cfg, key, default=_ABSENT) != _ABSENT else "")
    return keys


def _run_dir_of(ckpt: Path) -> Path:
    return ckpt.parent.parent if ckpt.parent.name == CHECKPOINT_DIR else ckpt.parent


def saved_config(ckpt_path: str | Path, checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The flat resolved config a checkpoint (its contents: ``checkpoint``) was trained with, or ``None``."""
    record = (checkpoint.get("callbacks") or {}).get(RunRecord.KEY)
    if record:
        return flatten(yaml.safe_load(record["config"]))
    hydra_dir = _run_dir_of(Path(ckpt_path)) / HYDRA_DIR
    if not (hydra_dir / "config.yaml").is_file():
        return None
    raw = flatten(OmegaConf.to_container(OmegaConf.load(hydra_dir / "config.yaml"), resolve=False))
    flat = {k: v for k, v in raw.items() if not (isinstance(v, str) and "${" in v)}  # only plain values compare
    if (hydra_dir / "hydra.yaml").is_file():
        choices = OmegaConf.load(hydra_dir / "hydra.yaml").hydra.runtime.choices
        flat.update(model_name=choices.get("model"), data_name=choices.get("data"))
    return flat


def _set(cfg: DictConfig, key: str, value: Any) -> None:
    with open_dict(cfg):
        if value is _ABSENT:
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            if isinstance(node, DictConfig) and leaf in node:
                del node[leaf]
        else:
            OmegaConf.update(cfg, key, value, force_add=True)


def reconcile(cfg: DictConfig, ckpt_path: str | None, checkpoint: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Make ``cfg`` the checkpoint's config plus the accepted changes (see the module doc); return those changes.

    Raises:
        ConfigError: The command line changes a key that changes the result, and ``resume_accept`` does not
            name it; or the checkpoint has trained more epochs than ``trainer.max_epochs``.
    """
    if ckpt_path is None:
        return []
    saved = saved_config(ckpt_path, checkpoint)
    evaluating = not cfg.get("train", True)
    if saved is None:
        log.warning("%s records no config: only its network and weight shapes are checked, not its data or "
                    "training settings.", ckpt_path)
        return []
    if cfg.get("seed", 0) is None and saved.get("seed") is not None:
        _set(cfg, "seed", saved["seed"])  # seed=null draws a seed: the run already drew its own
    current = flatten(plain_config(cfg, {k.removeprefix("facts."): v for k, v in saved.items() if k.startswith("facts.")}))
    explicit, accepted = explicit_keys(cfg), list(cfg.get("resume_accept") or [])
    differ = [k for k in sorted(set(current) | set(saved))
              if matters(k, evaluating) and current.get(k, _ABSENT) != saved.get(k, _ABSENT)]
    refused = [k for k in differ if _under(k, explicit) and not _under(k, accepted)]
    if "seed" in explicit and saved.get("seed", _ABSENT) not in (_ABSENT, current.get("seed")):
        raise ConfigError(
            f"seed={current.get('seed')}: {ckpt_path} was trained with seed={saved['seed']}, which drew its data split "
            f"and order; a {'test' if evaluating else 'resume'} keeps them. Leave seed out (what runs, and its record, "
            f"then say seed={saved['seed']}), or train a new run with seed={current.get('seed')}.")
    if evaluating and saved.get("seed", _ABSENT) is not _ABSENT:
        _set(cfg, "seed", saved["seed"])  # what is tested is the run's split: the record says so
    if "model.net._target_" in refused:  # another network altogether: say so in the model names
        raise other_model_error(ckpt_path, saved["model.net._target_"], current["model.net._target_"],
                                cfg.get("model_name"))
    unreachable = None if evaluating else _unreachable(ckpt_path, [k for k in differ if _under(k, explicit)], saved)
    if refused:
        shown = "; ".join(f"{k}: {saved.get(k, _ABSENT)} -> {current.get(k, _ABSENT)}" for k in refused[:6])
        more = f"; and {len(refused) - 6} more" if len(refused) > 6 else ""
        accept = refused if len(refused) <= 4 else sorted({GROUP_OF.get(k, k).split(".")[0] for k in refused})
        how = "test" if evaluating else "resume"
        if unreachable:  # accepting the others would not do: say why, and what does
            raise ConfigError(f"ckpt_path={ckpt_path} was trained with other settings that change the result "
                              f"({shown}{more}). {', '.join(unreachable[0])} cannot change on a resume: "
                              f"{unreachable[1]} Or leave them out to resume with the saved settings.")
        raise ConfigError(
            f"ckpt_path={ckpt_path} was trained with other settings that change the result ({shown}{more}). Leave "
            f"them out to {how} with the saved settings, or accept the change with resume_accept=[{','.join(accept)}]."
        )
    if unreachable:
        raise ConfigError(f"resume_accept cannot take {', '.join(unreachable[0])} on a resume: {unreachable[1]}")
    changes = [{"key": k, "from": saved.get(k, _ABSENT), "to": current.get(k, _ABSENT)}
               for k in differ if _under(k, explicit)]
    for key in differ:
        if not _under(key, explicit):
            _set(cfg, key, saved.get(key, _ABSENT))
    # The classes a run builds (data, model) take the run's settings whole, even those that do not change the result
    # (another dataset's batch_size would be an unknown key of this one); only where the data lies stays local.
    for key in sorted(set(current) | set(saved)):
        if (_under(key, ("data", "model")) and key not in differ and not _under(key, explicit)
                and key.rsplit(".", 1)[-1] not in ("data_dir", "download")
                and current.get(key, _ABSENT) != saved.get(key, _ABSENT)):
            _set(cfg, key, saved.get(key, _ABSENT))
    for change in changes:
        log.warning("Accepted change (resume_accept): %s %s -> %s", change["key"], change["from"], change["to"])
    done = int(checkpoint.get("epoch", 0)) + 1
    max_epochs = cfg.get("trainer", {}).get("max_epochs")
    if not evaluating and max_epochs is not None and 0 <= max_epochs < done:
        raise ConfigError(f"ckpt_path={ckpt_path} has already trained {done} epochs, more than "
                          f"trainer.max_epochs={max_epochs}: give trainer.max_epochs >= {done}.")
    return changes


def _unreachable(ckpt_path: str, keys: list[str], saved: dict[str, Any]) -> tuple[list[str], str] | None:
    """The changed keys a resumed run cannot honour (they would be logged, yet not be what runs), and why: a data
    change (the checkpoints kept so far were chosen on the old data's validation split, and the best one would be
    tested on the new data; the batch size aside), or a change of the scheduler or of the learning rate it drives
    (Lightning restores the scheduler's state, which keeps the old values)."""
    scheduled = saved.get("model.scheduler._target_") not in (None, _ABSENT)
    data = [k for k in keys if _under(k, ("data",)) and k not in RESUMABLE_DATA]
    schedule = [k for k in keys if _under(k, ("model.scheduler", "model.scheduler_interval", "model.scheduler_monitor"))
                or (scheduled and k == "model.optimizer.lr")]
    if data:
        return data, (f"the checkpoints of {ckpt_path}'s run were chosen on the old data's validation split, so its "
                      f"test would not be of this data. Train a new run on it, or test the checkpoint on it: python "
                      f"eval.py ckpt_path={ckpt_path} data=... 'resume_accept=[data]'.")
    if schedule:
        return schedule, (f"the learning-rate scheduler ({saved.get('model.scheduler._target_')}) restored from "
                          f"{ckpt_path} keeps its saved schedule, so the new value would not be what runs. Start a "
                          f"new run with it.")
    return None


def finished_metrics(cfg: DictConfig, changes: list[dict[str, Any]]) -> dict[str, float] | None:
    """The metrics of a finished run that ``cfg`` resumes unchanged (nothing to do); ``None`` if unfinished.

    Raises:
        ConfigError: ``cfg`` would change a finished run (``resume_accept``): its files are final.
    """
    import json

    run_dir = Path(cfg.paths.output_dir)
    if not cfg.get("train", True) or status(run_dir) != "finished":
        return None
    if changes:
        raise ConfigError(
            f"{run_dir} is a finished run (metrics.json) and its files are final; resume_accept would change it. "
            f"Continue it in a new run directory instead: ckpt_path={run_dir}/checkpoints/last.ckpt "
            f"hydra.run.dir=<new dir> (with the same resume_accept)."
        )
    log.info("%s is finished: nothing to resume (its metrics.json is kept as it is).", run_dir)
    return json.loads((run_dir / METRICS_FILE).read_text())
