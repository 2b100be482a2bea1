"""A run's record, kept in every checkpoint: what a resume needs besides the weights."""

import time
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import Callback

from zoo.errors import ConfigError
from zoo.files import RECORD_KEY


class RunRecord(Callback):
    """What a resumed run needs from its checkpoint besides weights: config, accepted changes, fit seconds and
    the last metrics (a finished fit that is resumed only to test still reports its ``val/*`` and ``train/*``)."""

    KEY = RECORD_KEY

    def __init__(self, config: dict[str, Any], changes: list[dict[str, Any]] | None = None) -> None:
        self.config = yaml.safe_dump(config, sort_keys=True)  # the run's resolved config, as plain containers
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
