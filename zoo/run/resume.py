"""Resume or evaluate a checkpoint with the settings it was trained with (docs/reliability.md): a key the
command did not set takes the saved value; a changed key that changes the result (not zoo.keys.neutral) is
refused unless ``resume_accept`` names it, and then reaches everything it touches or is refused too."""

import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import ConfigError
from zoo.files import CHECKPOINT_DIR, HYDRA_DIR, RECORD_KEY
from zoo.keys import GROUP_OF, flatten, neutral, under
from zoo.run.checkpoints import other_model_error
from zoo.run.rundir import as_typed

log = logging.getLogger(__name__)

_ABSENT = "<absent>"
# What a test result depends on (eval.py): the network and the data, not how it was trained.
EVAL_KEYS = ("model", "model_name", "data", "data_name", "trainer.precision")
SCHEDULE = ("model.scheduler", "model.scheduler_interval", "model.scheduler_monitor")  # restored on a resume
TRAINING_ONLY = ("model.optimizer", *SCHEDULE, "data.batch_size", "data.seed")
RESUMABLE_DATA = ("data.batch_size",)  # data settings a resumed run takes from then on (the data stays)


def matters(key: str, evaluating: bool) -> bool:
    """Whether ``key`` can change the result of a resumed run (or, ``evaluating``, of a test)."""
    if neutral(key):
        return False
    return not evaluating or (under(key, EVAL_KEYS) and not under(key, TRAINING_ONLY))


def plain_config(cfg: DictConfig, facts: dict[str, Any] | None = None) -> dict[str, Any]:
    """``cfg`` resolved, as plain containers, without Hydra's own settings; ``facts`` stand in for the data's
    facts while the data is not loaded yet."""
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
    overrides = OmegaConf.select(cfg, "hydra.overrides.task")
    if overrides is None and HydraConfig.initialized():
        overrides = HydraConfig.get().overrides.task
    if overrides is None:
        return [""]
    keys = []
    for override in as_typed(overrides):
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0].replace("/", ".")  # model/scheduler=...
        if not under(key, ("hydra",)):
            keys.append(key if OmegaConf.select(cfg, key, default=_ABSENT) != _ABSENT else "")
    return keys


def saved_config(ckpt_path: str | Path, checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The flat resolved config a checkpoint was trained with (its run record, else its run directory's
    ``.hydra/config.yaml``), or ``None``."""
    record = (checkpoint.get("callbacks") or {}).get(RECORD_KEY)
    if record:
        return flatten(yaml.safe_load(record["config"]))
    ckpt = Path(ckpt_path)
    hydra_dir = (ckpt.parent.parent if ckpt.parent.name == CHECKPOINT_DIR else ckpt.parent) / HYDRA_DIR
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
        if value is not _ABSENT:
            OmegaConf.update(cfg, key, value, force_add=True)
            return
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(node, DictConfig) and leaf in node:
            del node[leaf]


def reconcile(cfg: DictConfig, ckpt_path: str | None, checkpoint: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Make ``cfg`` the checkpoint's config plus the accepted changes, and return those. :class:`ConfigError`:
    a change is not accepted or cannot be honoured, or the checkpoint has trained more epochs than
    ``trainer.max_epochs``."""
    if ckpt_path is None:
        return []
    saved = saved_config(ckpt_path, checkpoint)
    if saved is None:
        log.warning("%s records no config: only its network and weight shapes are checked, not its data or "
                    "training settings.", ckpt_path)
        return []
    evaluating = not cfg.get("train", True)
    # A training run that continues a checkpoint in a folder of its own: its record (.hydra/) is its command, so
    # the command must say what runs: every key counts as set.
    elsewhere = not evaluating and Path(cfg.paths.output_dir).resolve() not in Path(ckpt_path).resolve().parents
    if cfg.get("seed", 0) is None and saved.get("seed") is not None:
        _set(cfg, "seed", saved["seed"])  # seed=null draws a seed: the run already drew its own
    facts = {k.removeprefix("facts."): v for k, v in saved.items() if k.startswith("facts.")}
    keys, was, now = _compared(cfg, saved, facts)
    explicit, accepted = [""] if elsewhere else explicit_keys(cfg), list(cfg.get("resume_accept") or [])
    if under("seed", explicit) and was["seed"] not in (_ABSENT, now["seed"]):
        keep = (f"Give seed={was['seed']} (this run's own folder records its command)" if elsewhere else
                f"Leave seed out (what runs, and its record, then say seed={was['seed']})")
        raise ConfigError(
            f"seed={now['seed']}: {ckpt_path} was trained with seed={was['seed']}, which drew its data split "
            f"and order; a {'test' if evaluating else 'resume'} keeps them. {keep}, or train a new run with "
            f"seed={now['seed']}.")
    # What the command did not set is the run's (the seed too: what is tested is the run's split); the classes a
    # run builds take the run's settings whole, even those that do not change the result (another dataset's
    # batch_size would be an unknown key of this one); only where the data lies stays local. Then compared again:
    # a key that follows another (data.split.seed: ${seed}) follows the run's value.
    for key in (k for k in keys if was[k] != now[k] and not under(k, explicit)):
        whole = under(key, ("data", "model")) and key.rsplit(".", 1)[-1] not in ("data_dir", "download")
        if matters(key, evaluating) or whole or key == "seed":
            _set(cfg, key, was[key])
    keys, was, now = _compared(cfg, saved, facts)
    chosen = [k for k in keys if was[k] != now[k] and matters(k, evaluating) and under(k, explicit)]
    refused = [k for k in chosen if not under(k, accepted)]
    if "model.net._target_" in refused:  # another network altogether: say so in the model names
        target = "model.net._target_"
        raise other_model_error(ckpt_path, was[target], now[target], cfg.get("model_name"))
    unreachable = None if evaluating else _unreachable(ckpt_path, chosen, saved)
    if refused:
        shown = "; ".join(f"{k}: {was[k]} -> {now[k]}" for k in refused[:6])
        shown += f"; and {len(refused) - 6} more" if len(refused) > 6 else ""
        told = f"ckpt_path={ckpt_path} was trained with other settings that change the result ({shown})."
        keep = (f"give the saved values ({_saved_overrides(refused, was)}): this run's own folder records its "
                f"command" if elsewhere else f"leave them out to {'test' if evaluating else 'resume'} with the "
                f"saved settings")
        if unreachable:  # accepting the others would not do: say why, and what does
            raise ConfigError(f"{told} {', '.join(unreachable[0])} cannot change on a resume: "
                              f"{unreachable[1]} Or {keep}.")
        accept = refused if len(refused) <= 4 else sorted({GROUP_OF.get(k, k).split(".")[0] for k in refused})
        raise ConfigError(f"{told} {keep[0].upper()}{keep[1:]}, or accept the change with "
                          f"resume_accept=[{','.join(accept)}].")
    if unreachable:
        raise ConfigError(f"resume_accept cannot take {', '.join(unreachable[0])} on a resume: {unreachable[1]}")
    for k in chosen:
        log.warning("Accepted change (resume_accept): %s %s -> %s", k, was[k], now[k])
    done = int(checkpoint.get("epoch", 0)) + 1
    max_epochs = cfg.get("trainer", {}).get("max_epochs")
    if not evaluating and max_epochs is not None and 0 <= max_epochs < done:
        raise ConfigError(f"ckpt_path={ckpt_path} has already trained {done} epochs, more than "
                          f"trainer.max_epochs={max_epochs}: give trainer.max_epochs >= {done}.")
    return [{"key": k, "from": was[k], "to": now[k]} for k in chosen]


def _saved_overrides(keys: list[str], was: dict[str, Any]) -> str:
    """The overrides that give ``keys`` their saved values (a config group by its name, ``~key``: no such key)."""
    groups = [GROUP_OF[k] for k in keys if k in GROUP_OF]

    def override(key: str) -> str:
        value = was[key]
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        return f"~{key}" if value == _ABSENT else f"{GROUP_OF.get(key, key)}={text}"

    return " ".join(override(k) for k in keys if k in GROUP_OF or not under(k, groups))


def _compared(cfg: DictConfig, saved: dict[str, Any], facts: dict[str, Any]) -> tuple[list[str], dict, dict]:
    """Every key of the run's (``saved``) and this command's config, with its value in each."""
    current = flatten(plain_config(cfg, facts))
    keys = sorted(set(current) | set(saved))
    return keys, {k: saved.get(k, _ABSENT) for k in keys}, {k: current.get(k, _ABSENT) for k in keys}


def _unreachable(ckpt_path: str, keys: list[str], saved: dict[str, Any]) -> tuple[list[str], str] | None:
    """The changed keys a resumed run cannot honour, and why: a data change (the checkpoints so far were
    chosen on the old data's validation split; the batch size aside), or a change of the scheduler or of the
    learning rate it drives (Lightning restores the scheduler's state, which keeps the old values)."""
    scheduler = saved.get("model.scheduler._target_")
    data = [k for k in keys if under(k, ("data",)) and k not in RESUMABLE_DATA]
    schedule = [k for k in keys if under(k, SCHEDULE) or (scheduler and k == "model.optimizer.lr")]
    if data:
        return data, (f"the checkpoints of {ckpt_path}'s run were chosen on the old data's validation split, so its "
                      f"test would not be of this data. Train a new run on it, or test the checkpoint on it: python "
                      f"eval.py ckpt_path={ckpt_path} data=... 'resume_accept=[data]'.")
    if schedule:
        return schedule, (f"the learning-rate scheduler ({scheduler}) restored from {ckpt_path} keeps "
                          f"its saved schedule, so the new value would not be what runs. Start a new run "
                          f"with it.")
    return None

