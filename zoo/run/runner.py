"""Fit, validate and test one configuration: ``train(cfg) -> (metrics, objects)``."""

import json
import logging
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import ConfigError
from zoo.run.checkpoints import check_checkpoint
from zoo.run.compatibility import CONFIG_DIR, check_compatible
from zoo.run.distributed import keep_full_batch_on_one_device, use_resolved_config_for_ddp_children
from zoo.run.hparams import check_hparams
from zoo.run.threads import apply_threads

log = logging.getLogger(__name__)


def _instantiate_all(section: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a callbacks/logger config group."""
    if not section:
        return []
    return [instantiate(c) for c in section.values() if isinstance(c, DictConfig) and "_target_" in c]


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def compose_config(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """Compose ``configs/train.yaml`` as ``python train.py <overrides>`` does, writing into ``output_dir``.

    For tests, benchmarks and notebooks that call :func:`train` without the ``@hydra.main`` wrapper.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train.yaml", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.log_dir = str(Path(output_dir) / "logs")
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def prepare(cfg: DictConfig) -> DictConfig:
    """Check a composed config before anything is built, and fix its seed.

    Raises:
        ConfigError: The model cannot read the data, or a setting is invalid.
    """
    if "hydra" in cfg and not HydraConfig.initialized():
        HydraConfig.instance().set_config(cfg)  # composed configs (tests, notebooks) resolve ${hydra:...}
    check_compatible(cfg)
    check_hparams(cfg)
    if cfg.get("seed") is None:
        with open_dict(cfg):
            cfg.seed = random.SystemRandom().randrange(2**31)
    keep_full_batch_on_one_device(cfg)
    return cfg


def _resolve_ckpt(cfg: DictConfig, model: torch.nn.Module | None = None) -> str | None:
    """The checkpoint to resume (or test), checked against ``model``; ``None`` to start fresh."""
    ckpt = cfg.get("ckpt_path")
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if ckpt == "last":
        ckpt = str(last)
    elif ckpt is None and cfg.get("auto_resume"):
        # The newest of last.ckpt and Lightning's SLURM requeue checkpoints (<run dir>/hpc_ckpt_<n>.ckpt).
        found = [p for p in (last, *Path(cfg.paths.output_dir).glob("hpc_ckpt_*.ckpt")) if p.is_file()]
        ckpt = str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if ckpt is not None and not Path(ckpt).is_file():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} does not exist ({ckpt}). Give the path of a .ckpt file, or "
            f"ckpt_path=last together with hydra.run.dir=<the run directory to resume>."
        )
    if ckpt is None and not cfg.get("train", True) and cfg.get("test", True):
        raise ConfigError("train=false tests a trained model: give ckpt_path=<path to a .ckpt file>.")
    earlier = sorted(last.parent.glob("*.ckpt")) if last.parent.is_dir() else []
    if ckpt is None and cfg.get("train", True) and earlier and os.environ.get("LOCAL_RANK", "0") == "0":
        raise ConfigError(  # a fresh run would overwrite them (DDP ranks > 0 start after this check on rank 0)
            f"{last.parent} already holds checkpoints of an earlier run ({earlier[0].name}, ...). Resume it with "
            f"ckpt_path=last (or auto_resume=true), or start afresh in another hydra.run.dir; Zoo does not "
            f"overwrite them."
        )
    if ckpt is not None and model is not None:
        check_checkpoint(ckpt, model, cfg)
    return ckpt


def _stopped_by_sigterm(cfg: DictConfig, trainer: L.Trainer) -> None:
    """Lightning stops cleanly on SIGTERM (preemption, ``scancel``, ``kill``); exit with 143, not 0, and say how to go on."""
    log.error(
        "Stopped by SIGTERM during epoch %d; %s/checkpoints/last.ckpt holds the last finished epoch. Resume with the "
        "same command plus ckpt_path=last hydra.run.dir=%s (or auto_resume=true).",
        trainer.current_epoch, cfg.paths.output_dir, cfg.paths.output_dir,
    )
    raise SystemExit(128 + signal.SIGTERM)


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
    threads = apply_threads(cfg)  # before anything builds: intra-op threads of every operator below
    use_resolved_config_for_ddp_children(cfg)  # DDP ranks 1..N-1 rerun this exact config, same run dir
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data)
    model: L.LightningModule = instantiate(cfg.model)
    ckpt_path = _resolve_ckpt(cfg, model)  # errors before anything runs
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

    metrics: dict[str, float] = {"params": float(params), "seed": float(cfg.seed), "threads": float(threads)}
    if cfg.get("train", True):
        start = time.perf_counter()
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        except SIGTERMException:
            _stopped_by_sigterm(cfg, trainer)
        metrics["fit_seconds"] = time.perf_counter() - start
        metrics["epochs"] = float(trainer.current_epoch)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    if cfg.get("test", True):
        ckpt = None
        best = next((c.best_model_path for c in callbacks if isinstance(c, ModelCheckpoint)), "")
        if cfg.get("train", True) and best and not trainer.fast_dev_run:
            ckpt = best
        elif not cfg.get("train", True):
            ckpt = ckpt_path
        if ckpt is None and cfg.get("train", True):
            log.warning("No best checkpoint was kept: testing the final weights.")
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        path = write_metrics(metrics, cfg.paths.output_dir)
        print_summary(cfg, metrics)
        log.info("Metrics written to %s", path)
    return metrics, objects
