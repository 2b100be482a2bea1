"""Fit, validate and test one configuration: ``train(cfg) -> (metrics, objects)``."""

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.registry import ConfigError, check_compatible

log = logging.getLogger(__name__)


def _instantiate_all(section: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a callbacks/logger config group."""
    if not section:
        return []
    return [instantiate(c) for c in section.values() if isinstance(c, DictConfig) and "_target_" in c]


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def prepare(cfg: DictConfig) -> DictConfig:
    """Check a composed config before anything is built, and fix its seed.

    Raises:
        ConfigError: The model cannot read the data, or a setting is invalid.
    """
    if "hydra" in cfg and not HydraConfig.initialized():
        HydraConfig.instance().set_config(cfg)  # composed configs (tests, notebooks) resolve ${hydra:...}
    check_compatible(cfg)
    if cfg.get("seed") is None:
        with open_dict(cfg):
            cfg.seed = random.SystemRandom().randrange(2**31)
    return cfg


def _resolve_ckpt(cfg: DictConfig) -> str | None:
    ckpt = cfg.get("ckpt_path")
    if ckpt == "last":
        ckpt = str(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    if ckpt is not None and not Path(ckpt).is_file():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} does not exist ({ckpt}). Give the path of a .ckpt file, or "
            f"ckpt_path=last together with hydra.run.dir=<the run directory to resume>."
        )
    return ckpt


def write_metrics(metrics: dict[str, float], output_dir: str | Path) -> Path:
    path = Path(output_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return path


def print_summary(cfg: DictConfig, metrics: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{cfg.get('model_name')} on {cfg.get('data_name')} (seed {cfg.seed})")
    for col in ("test/acc", "test/loss", "params", "fit_seconds"):
        table.add_column(col, justify="right")
    fmt = {"test/acc": "{:.4f}", "test/loss": "{:.4f}", "params": "{:,.0f}", "fit_seconds": "{:.1f}"}
    table.add_row(*(fmt[k].format(metrics[k]) if k in metrics else "-" for k in fmt))
    Console().print(table)


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit the model on the data, then test the best checkpoint.

    Returns:
        The final metrics (``test/acc``, ``val/acc_best``, ``params``, ``fit_seconds``, ...) and the
        built objects (``cfg``, ``datamodule``, ``model``, ``trainer``, ``callbacks``, ``loggers``).
    """
    cfg = prepare(cfg)
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    objects = {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer,
               "callbacks": callbacks, "loggers": loggers}

    params = count_parameters(model)
    hparams = OmegaConf.to_container(cfg, resolve=True)
    hparams.pop("hydra", None)
    for logger in trainer.loggers:
        logger.log_hyperparams({**hparams, "params": params})

    metrics: dict[str, float] = {"params": float(params), "seed": float(cfg.seed)}
    if cfg.get("train", True):
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=_resolve_ckpt(cfg))
        metrics["fit_seconds"] = time.perf_counter() - start
        metrics["epochs"] = float(trainer.current_epoch)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    if cfg.get("test", True):
        ckpt = None
        best = next((c.best_model_path for c in callbacks if isinstance(c, ModelCheckpoint)), "")
        if cfg.get("train", True) and best and not trainer.fast_dev_run:
            ckpt = best
        elif not cfg.get("train", True):
            ckpt = _resolve_ckpt(cfg)
        if ckpt is None and cfg.get("train", True):
            log.warning("No best checkpoint was kept: testing the final weights.")
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        path = write_metrics(metrics, cfg.paths.output_dir)
        print_summary(cfg, metrics)
        log.info("Metrics written to %s", path)
    return metrics, objects
