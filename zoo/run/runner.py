"""Fit, validate and test one configuration: ``train(cfg) -> (metrics, objects)``."""

import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, open_dict

from zoo.callbacks.run_record import RunRecord
from zoo.errors import storage_errors
from zoo.files import CONFIG_TREE, METRICS_FILE, atomic_write
from zoo.registry import compose
from zoo.run.build import build
from zoo.run.checkpoints import check_checkpoint
from zoo.run.console import print_config_tree, silence_noise
from zoo.run.distributed import process_state_kept, use_resolved_config_for_ddp_children
from zoo.run.plan import RunPlan, make_plan
from zoo.run.resume import plain_config
from zoo.run.rundir import own_folder, run_dir_lock, slurm_task
from zoo.signals import exit_code_on_signal, exit_if_signalled

log = logging.getLogger(__name__)


def _instantiate_all(section: DictConfig | None) -> list[Any]:
    """Instantiate every ``_target_`` entry of a callbacks/logger config group."""
    return [build(c) for c in (section or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


def compose_config(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """``configs/train.yaml`` composed as ``python train.py <overrides>`` does, writing into ``output_dir``
    (for tests, benchmarks and notebooks that call :func:`train` without ``@hydra.main``)."""
    cfg = compose(overrides)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
        cfg.paths.log_dir = str(Path(output_dir) / "logs")
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def write_metrics(metrics: dict[str, float], output_dir: str | Path) -> Path:
    """Write ``<output_dir>/metrics.json`` whole or not at all; a value that is not finite (NaN, inf) is
    written as ``null``, so the file is always valid JSON."""
    finite = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}
    text = json.dumps(finite, indent=2, sort_keys=True, allow_nan=False)
    return atomic_write(Path(output_dir) / METRICS_FILE, lambda f: f.write(text.encode()))


def print_summary(cfg: DictConfig, metrics: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    formats = {"test/acc": "{:.4f}", "test/loss": "{:.4f}", "params": "{:,.0f}", "fit_seconds": "{:.1f}"}
    table = Table(*(Column(k, justify="right") for k in formats),
                  title=f"{cfg.get('model_name')} on {cfg.get('data_name')} (seed {cfg.seed})")
    table.add_row(*(f.format(metrics[k]) if k in metrics else "-" for k, f in formats.items()))
    Console().print(table)


def tested_checkpoint(plan: RunPlan, callbacks: list[Any], trainer: L.Trainer, metrics: dict[str, Any]) -> str | None:
    """The checkpoint to test: the evaluated one; after a fit, the best one kept (the score that chose it goes
    into ``metrics``: zoo.report selects on it); ``None``: the final weights."""
    if not plan.train:
        return plan.ckpt_path
    chooser = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    if chooser is None or not chooser.best_model_path or trainer.fast_dev_run:
        log.warning("No best checkpoint was kept: testing the final weights.")
        return None
    if chooser.monitor and chooser.best_model_score is not None:
        metrics[f"{chooser.monitor}_tested"] = float(chooser.best_model_score)
    return chooser.best_model_path


@storage_errors()  # a full disk or an unwritable folder: one StorageError naming the file
def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit the model on the data, then test the best checkpoint; or resume a run, or (``train=false``) test one.
    Returns the metrics (``test/acc``, ``params``...) and the objects built (``cfg``, ``model``...)."""
    if "hydra" in cfg and not HydraConfig.initialized():
        HydraConfig.instance().set_config(cfg)  # composed configs (tests, notebooks) resolve ${hydra:...}
    # Admitted once; DDP ranks and SLURM tasks join. The next run in this process starts clean (a sweep's next job).
    with run_dir_lock(own_folder(cfg), cfg) as owner, process_state_kept():
        silence_noise(cfg)  # extras.quiet: its warning filters end with the run
        # DDP children start from rank zero's checked config; each SLURM task checks the same command alike.
        plan = make_plan(cfg, check=owner or slurm_task())
        if plan.kind == "finished":  # resuming a finished run: nothing to do, nothing rewritten
            return plan.metrics, {"cfg": cfg, "plan": plan}
        return _fit_and_test(cfg, plan)


def _fit_and_test(cfg: DictConfig, plan: RunPlan) -> tuple[dict[str, float], dict[str, Any]]:
    datamodule, ckpt_path = plan.datamodule, plan.ckpt_path
    use_resolved_config_for_ddp_children(cfg)  # DDP ranks 1..N-1 rerun this exact config, same run dir
    L.seed_everything(cfg.seed, workers=True)

    model: L.LightningModule = build(cfg.model)
    if ckpt_path is not None:
        check_checkpoint(ckpt_path, model, cfg, plan.checkpoint)  # errors before anything runs
    config = plain_config(cfg)
    record = RunRecord(config, list(plan.changes))  # config, fit time and metrics so far, in every checkpoint
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    for logger in loggers:  # a resumed run appends to its history (zoo.loggers.HistoryCSVLogger)
        if hasattr(logger, "resume_epoch"):
            logger.resume_epoch = plan.resume_epoch
    if cfg.get("threads") is not None:  # else Lightning's CPU DDP gives each rank its own count
        os.environ["OMP_NUM_THREADS"] = str(cfg.threads)
    trainer: L.Trainer = build(cfg.trainer, callbacks=[*callbacks, record], logger=loggers or False)
    print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / CONFIG_TREE)  # once every class took its part
    objects = {"cfg": cfg, "plan": plan, "datamodule": datamodule, "model": model, "trainer": trainer,
               "callbacks": callbacks, "loggers": loggers}

    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for logger in trainer.loggers:
        logger.log_hyperparams({**config, "params": params})

    metrics: dict[str, float | int] = {"params": params, "seed": int(cfg.seed)}
    if "SLURM_RESTART_COUNT" in os.environ:  # a SLURM job requeued (time limit, preemption) and resumed
        metrics["requeues"] = int(os.environ["SLURM_RESTART_COUNT"])
    if plan.kind == "resume":  # the checkpoints folder is this run's own: Lightning's warning says nothing here
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    if plan.train:
        with exit_code_on_signal(trainer, "fit"):  # SIGTERM/SIGINT: exit 143/130, never 0
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics["fit_seconds"] = record.fit_seconds()  # earlier sessions of a resumed run included
        metrics["epochs"] = trainer.current_epoch
        metrics.update(record.last_metrics())  # a resumed run that had finished fitting keeps its val/*, train/*

    if plan.test:
        ckpt = tested_checkpoint(plan, callbacks, trainer, metrics)
        with exit_code_on_signal(trainer, "test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)  # print_summary's table
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    # Same seed, same numbers on the same machine with the same thread count (see README): record it.
    metrics["threads"] = torch.get_num_threads()
    if trainer.is_global_zero:
        path = write_metrics(metrics, cfg.paths.output_dir)
        print_summary(cfg, metrics)
        log.info("Metrics written to %s", path)
    exit_if_signalled(trainer)  # a signal on the last test batch: the result is complete, yet the run stops
    return metrics, objects
