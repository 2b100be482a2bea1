"""Resume or evaluate a checkpoint with the settings it was trained with, and keep the run's whole history.

Every checkpoint holds the run's resolved config, the changes accepted on earlier resumes, the fit time so
far and the last epoch's metrics (:class:`RunRecord`, a callback whose state Lightning saves and restores).
Before a resume (``ckpt_path``, ``auto_resume``) or an evaluation (``eval.py``, ``train=false``),
:func:`reconcile` compares the new config with the saved one, key by key:

- a key the command line did not set takes the saved value (``python eval.py ckpt_path=<ckpt>`` tests on the
  run's data with the run's model, ``ckpt_path=last hydra.run.dir=<run>`` continues the run as it was);
- a key the command line set to another value that changes the result is refused, naming the key, unless
  ``resume_accept=[<key>, ...]`` accepts it: then it is applied (a new ``model.optimizer.*`` value is set in the
  restored optimizer, which Lightning would otherwise silently keep), logged and recorded in the checkpoints;
- keys that do not change the result (paths, loggers, callbacks, progress bars...) are free.

A checkpoint saved without a record (older runs) is compared with ``<run dir>/.hydra/config.yaml`` when it lies
in a run directory.
"""

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import ConfigError
from zoo.keys import flatten, neutral
from zoo.run.checkpoints import other_model_error, read_checkpoint
from zoo.run.rundir import is_finished

log = logging.getLogger(__name__)

_ABSENT = "<absent>"
# What a test result depends on (eval.py): the network and the data, not how it was trained.
EVAL_KEYS = ("model", "model_name", "data", "data_name", "trainer.precision")
TRAINING_ONLY = ("model.optimizer", "model.scheduler", "model.scheduler_monitor", "model.scheduler_interval",
                 "data.batch_size", "data.seed")
GROUP_OF = {"model_name": "model", "data_name": "data"}  # names that follow their config group


def _under(key: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    key = GROUP_OF.get(key, key)
    return any(p == "" or key == p or key.startswith(p + ".") for p in prefixes)


def matters(key: str, evaluating: bool) -> bool:
    """Whether ``key`` can change the result of a resumed run (or, ``evaluating``, of a test)."""
    if neutral(key):
        return False
    return not evaluating or (_under(key, EVAL_KEYS) and not _under(key, TRAINING_ONLY))


def _plain(cfg: DictConfig, facts: dict[str, Any] | None = None) -> dict[str, Any]:
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
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        if key.startswith("hydra.") or key == "hydra":
            continue
        keys.append(key if OmegaConf.select(cfg, key, default=_ABSENT) != _ABSENT else "")
    return keys


def _run_dir_of(ckpt: Path) -> Path:
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def saved_config(ckpt_path: str | Path, checkpoint: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The flat resolved config a checkpoint was trained with, or ``None`` when nothing records it."""
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(ckpt_path)
    record = (checkpoint.get("callbacks") or {}).get(RunRecord.KEY)
    if record:
        return flatten(yaml.safe_load(record["config"]))
    hydra_dir = _run_dir_of(Path(ckpt_path)) / ".hydra"
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


def reconcile(cfg: DictConfig, ckpt_path: str | None, checkpoint: dict[str, Any] | None = None
              ) -> list[dict[str, Any]]:
    """Make ``cfg`` the checkpoint's config plus the accepted changes (see the module doc); return those changes.

    Raises:
        ConfigError: The command line changes a key that changes the result, and ``resume_accept`` does not
            name it; or the checkpoint has trained more epochs than ``trainer.max_epochs``.
    """
    if ckpt_path is None:
        return []
    checkpoint = checkpoint if checkpoint is not None else read_checkpoint(ckpt_path)
    saved = saved_config(ckpt_path, checkpoint)
    evaluating = not cfg.get("train", True)
    if saved is None:
        log.warning("%s records no config: only its network and weight shapes are checked, not its data or "
                    "training settings.", ckpt_path)
        return []
    if cfg.get("seed", 0) is None and saved.get("seed") is not None:
        _set(cfg, "seed", saved["seed"])  # seed=null draws a seed: the run already drew its own
    current = flatten(_plain(cfg, {k.removeprefix("facts."): v for k, v in saved.items() if k.startswith("facts.")}))
    explicit, accepted = explicit_keys(cfg), list(cfg.get("resume_accept") or [])
    differ = [k for k in sorted(set(current) | set(saved))
              if matters(k, evaluating) and current.get(k, _ABSENT) != saved.get(k, _ABSENT)]
    refused = [k for k in differ if _under(k, explicit) and not _under(k, accepted)]
    if "model.net._target_" in refused:  # another network altogether: say so in the model names
        raise other_model_error(ckpt_path, saved["model.net._target_"], current["model.net._target_"],
                                cfg.get("model_name"))
    if refused:
        shown = "; ".join(f"{k}: {saved.get(k, _ABSENT)} -> {current.get(k, _ABSENT)}" for k in refused[:6])
        more = f"; and {len(refused) - 6} more" if len(refused) > 6 else ""
        accept = refused if len(refused) <= 4 else sorted({GROUP_OF.get(k, k).split(".")[0] for k in refused})
        raise ConfigError(
            f"ckpt_path={ckpt_path} was trained with other settings that change the result ({shown}{more}). Leave "
            f"them out to {'test' if evaluating else 'resume'} with the saved settings, or accept the change with "
            f"resume_accept=[{','.join(accept)}]."
        )
    changes = [{"key": k, "from": saved.get(k, _ABSENT), "to": current.get(k, _ABSENT)}
               for k in differ if _under(k, explicit)]
    if not evaluating:
        _refuse_unreachable(ckpt_path, [c["key"] for c in changes], saved)
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


def _refuse_unreachable(ckpt_path: str, keys: list[str], saved: dict[str, Any]) -> None:
    """Refuse accepted changes a resumed run cannot honour: they would be logged, yet not be what runs.

    Raises:
        ConfigError: A data change (the checkpoints kept so far were chosen on the old data's validation split,
            and the best one would be tested on the new data), or a change of the scheduler or of the learning
            rate it drives (Lightning restores the scheduler's state, which keeps the old values).
    """
    scheduled = saved.get("model.scheduler._target_") not in (None, _ABSENT)
    data = [k for k in keys if _under(k, ("data",))]
    schedule = [k for k in keys if _under(k, ("model.scheduler", "model.scheduler_interval", "model.scheduler_monitor"))
                or (scheduled and k == "model.optimizer.lr")]
    if data:
        raise ConfigError(
            f"resume_accept cannot take {', '.join(data)} on a resume: the checkpoints of {ckpt_path}'s run were "
            f"chosen on the old data's validation split, so its test would not be of this data. Train a new run on "
            f"it, or test the checkpoint on it: python eval.py ckpt_path={ckpt_path} data=... "
            f"'resume_accept=[data]'.")
    if schedule:
        raise ConfigError(
            f"resume_accept cannot take {', '.join(schedule)} on a resume: the learning-rate scheduler "
            f"({saved.get('model.scheduler._target_')}) restored from {ckpt_path} keeps its saved schedule, so "
            f"the new value would not be what runs. Start a new run with it, or resume with the saved settings.")


def finished_metrics(cfg: DictConfig, changes: list[dict[str, Any]]) -> dict[str, float] | None:
    """The metrics of a finished run that ``cfg`` resumes unchanged (nothing to do); ``None`` if unfinished.

    Raises:
        ConfigError: ``cfg`` would change a finished run (``resume_accept``): its files are final.
    """
    import json

    run_dir = Path(cfg.paths.output_dir)
    if not cfg.get("train", True) or not is_finished(run_dir):
        return None
    if changes:
        raise ConfigError(
            f"{run_dir} is a finished run (metrics.json) and its files are final; resume_accept would change it. "
            f"Continue it in a new run directory instead: ckpt_path={run_dir}/checkpoints/last.ckpt "
            f"hydra.run.dir=<new dir> (with the same resume_accept)."
        )
    log.info("%s is finished: nothing to resume (its metrics.json is kept as it is).", run_dir)
    return json.loads((run_dir / "metrics.json").read_text())


def keep_history(loggers: list[Any], epoch: int | None) -> None:
    """Tell loggers that keep a history file (``HistoryCSVLogger``) which epochs the resumed run keeps (up to
    ``epoch``; ``None``: a new run)."""
    for logger in loggers:
        if hasattr(logger, "resume_epoch"):
            logger.resume_epoch = epoch


class RunRecord(Callback):
    """What a resumed run needs from its checkpoint besides weights: config, accepted changes, fit seconds and
    the last metrics (a finished fit that is resumed only to test still reports its ``val/*`` and ``train/*``)."""

    KEY = "zoo.RunRecord"

    def __init__(self, cfg: DictConfig, changes: list[dict[str, Any]] | None = None) -> None:
        self.config = yaml.safe_dump(_plain(cfg), sort_keys=True)
        self.changes = [{**c, "at": time.strftime("%Y-%m-%d %H:%M:%S")} for c in changes or []]
        self.optimizer_changes = {c["key"].removeprefix("model.optimizer."): c["to"] for c in changes or []
                                  if c["key"].startswith("model.optimizer.")}
        self.seconds_before, self.metrics = 0.0, {}
        self._started: float | None = None
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return self.KEY

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        if stage == "fit":
            self._started = time.perf_counter()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and self._started is not None:
            self.seconds_before, self._started = self.fit_seconds(), None

    def fit_seconds(self) -> float:
        """Seconds spent fitting this run, the earlier (resumed) sessions included."""
        return self.seconds_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def last_metrics(self) -> dict[str, float]:
        """The metrics restored from the checkpoint, updated by what this session logged."""
        logged = self._trainer.callback_metrics if self._trainer is not None else {}
        return {**self.metrics, **{k: float(v) for k, v in logged.items() if not k.startswith("test/")}}

    def state_dict(self) -> dict[str, Any]:
        return {"config": self.config, "changes": self.changes, "fit_seconds": self.fit_seconds(),
                "metrics": self.last_metrics()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seconds_before = float(state_dict.get("fit_seconds", 0.0))
        self.metrics = dict(state_dict.get("metrics", {}))
        self.changes = [*state_dict.get("changes", []), *self.changes]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Apply accepted ``model.optimizer.*`` changes to the optimizer Lightning restored from the checkpoint."""
        for optimizer in trainer.optimizers:
            for name, value in self.optimizer_changes.items():
                for group in optimizer.param_groups:
                    if name not in group:
                        raise ConfigError(f"resume_accept=[model.optimizer.{name}]: the restored optimizer has "
                                          f"no setting {name!r}; start a new run to change it.")
                    group[name] = value
                    if name == "lr" and "initial_lr" in group:
                        group["initial_lr"] = value  # what schedulers scale
            for config in trainer.lr_scheduler_configs:
                if "lr" in self.optimizer_changes and hasattr(config.scheduler, "base_lrs"):
                    config.scheduler.base_lrs = [self.optimizer_changes["lr"]] * len(config.scheduler.base_lrs)
