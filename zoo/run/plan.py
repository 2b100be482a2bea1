"""The run plan (:func:`make_plan`): what a run will do, decided once, before the model and trainer are built:
its kind, the checkpoint (read once), the effective config (the checkpoint's settings plus the changes
resume_accept accepted), seed, devices, data facts. The plan is the config's only writer, then read-only."""

import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

import zoo.checks as checks
from zoo.errors import ConfigError
from zoo.files import CHECKPOINT_DIR, LAST_CKPT, METRICS_FILE
from zoo.registry import check_compatible, check_keys
from zoo.run.checkpoints import read_checkpoint
from zoo.run.distributed import keep_full_batch_on_one_device
from zoo.run.facts import load_data
from zoo.run.resume import reconcile
from zoo.run.rundir import check_paths, checkpoints, continues_run, status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """What a run does (see the module doc)."""

    kind: str  # "fresh", "resume", "finished" or "eval"
    train: bool = True  # fit (every kind but "eval")
    test: bool = True  # then test (``test=false``: not)
    ckpt_path: str | None = None
    checkpoint: Mapping[str, Any] | None = field(default=None, repr=False)
    changes: tuple[dict[str, Any], ...] = ()
    metrics: dict[str, Any] | None = None  # a finished run's metrics.json
    datamodule: L.LightningDataModule | None = field(default=None, repr=False)  # None: a finished run

    @property
    def resume_epoch(self) -> int | None:
        """The last epoch a resumed run had finished (its history is kept up to it)."""
        return int(self.checkpoint.get("epoch", 0)) if self.kind == "resume" and self.checkpoint else None


def _best_in(run_dir: Path) -> Path:
    """The checkpoint a finished fit tested: the one ``epoch_*.ckpt``, or the best one ``last.ckpt`` records."""
    kept = sorted((run_dir / CHECKPOINT_DIR).glob("epoch_*.ckpt"))
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if len(kept) > 1 and last.is_file():
        states = (read_checkpoint(last).get("callbacks") or {}).values()
        best = [s["best_model_path"] for s in states if isinstance(s, Mapping) and s.get("best_model_path")]
        kept = [p for p in kept if p.name in {Path(b).name for b in best}]
    if len(kept) == 1:
        return kept[0]
    listed = ", ".join(p.name for p in checkpoints(run_dir))
    if not listed:
        raise ConfigError(f"ckpt_path={run_dir}: no checkpoints in {run_dir / CHECKPOINT_DIR} (the run kept none, or "
                          f"did not finish an epoch). Give the path of a .ckpt file, or another run directory.")
    raise ConfigError(f"ckpt_path=best: {run_dir} has no single best checkpoint (checkpoints: {listed}); give the "
                      f"path of one .ckpt file.")


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to resume or test (``None``: start fresh); a test's ``ckpt_path`` may also be a run
    directory, or ``best`` or ``last`` of the one you are in. :class:`ConfigError`: it does not exist, or
    ``train=false`` names none."""
    ckpt, run_dir, train = cfg.get("ckpt_path"), Path(cfg.paths.output_dir), cfg.get("train", True)
    if ckpt is not None and not train:
        where = Path.cwd() if ckpt in ("best", "last") else Path(str(ckpt))
        if ckpt in ("best", "last") and not (where / CHECKPOINT_DIR).is_dir():
            raise ConfigError(f"ckpt_path={ckpt}: {where} is not a run directory (no {CHECKPOINT_DIR}/). "
                              f"Run eval from inside the run directory, or give ckpt_path=<run dir> or the "
                              f"path of a .ckpt.")
        if ckpt == "last":
            ckpt = str(where / CHECKPOINT_DIR / LAST_CKPT)
        elif where.is_dir():
            ckpt = str(_best_in(where))
    elif ckpt == "last":  # continues its own run
        ckpt = str(run_dir / CHECKPOINT_DIR / LAST_CKPT)
    elif continues_run(cfg):  # auto_resume: the newest of last.ckpt and Lightning's SLURM hpc_ckpt_<n>.ckpt
        found = [p for p in (run_dir / CHECKPOINT_DIR / LAST_CKPT, *run_dir.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
        ckpt = str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if ckpt is not None and not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} does not exist ({ckpt}). Give the path of a .ckpt file,"
                          " or ckpt_path=last together with hydra.run.dir=<the run directory to resume>.")
    if ckpt is None and not train and cfg.get("test", True):
        raise ConfigError("train=false tests a trained model: give ckpt_path=<path to a .ckpt file, or a run "
                          "directory>.")
    return ckpt


def make_plan(cfg: DictConfig, check: bool = True) -> RunPlan:
    """Decide the run (see the module doc); ``cfg`` becomes the effective config, then read-only. ``check``:
    reconcile it with the checkpoint (rank zero; DDP children start from rank zero's checked config)."""
    ckpt_path = resolve_checkpoint(cfg)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path is not None else None
    train, test = bool(cfg.get("train", True)), bool(cfg.get("test", True))
    changes = tuple(reconcile(cfg, ckpt_path, checkpoint)) if check else ()
    run_dir = Path(cfg.paths.output_dir)
    if check and train and status(run_dir) == "finished":  # its files are final: a change to them is refused
        if changes:
            raise ConfigError(f"{run_dir} is a finished run ({METRICS_FILE}) and its files are final; "
                              f"resume_accept would change it. Continue it in a new run directory instead: "
                              f"ckpt_path={run_dir / CHECKPOINT_DIR / LAST_CKPT} hydra.run.dir=<new dir> "
                              f"(with the same resume_accept).")
        log.info("%s is finished: nothing to resume (its %s is kept as it is).", run_dir, METRICS_FILE)
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        return RunPlan("finished", train, test, ckpt_path, checkpoint, changes, metrics)
    # A run to do: its settings checked (ConfigError), its seed drawn, its data loaded, then the config read-only.
    check_compatible(cfg)
    check_keys(cfg, ("data",))
    if cfg.get("seed") is None:  # drawn first: settings that follow it (split seed: ${seed}) are checked too
        with open_dict(cfg):
            cfg.seed = random.SystemRandom().randrange(2**31)
    keep_full_batch_on_one_device(cfg)
    check_settings(cfg)  # the classes built below check their own arguments (build names the key)
    check_paths(cfg)  # before the data is fetched: no folder setting points into another run
    if cfg.get("threads") is not None:  # before anything is built: the intra-op threads of every operator below
        torch.set_num_threads(cfg.threads)  # one by default: parallel jobs on shared cores wait on each other
    datamodule = load_data(cfg)  # its facts fill cfg.facts
    check_selection(cfg, train)
    check_keys(cfg)
    OmegaConf.set_readonly(cfg, True)  # what runs is what it says
    kind = "fresh" if ckpt_path is None else "resume" if train else "eval"
    return RunPlan(kind, train, test, ckpt_path, checkpoint, changes, datamodule=datamodule)


def check_selection(cfg: DictConfig, train: bool) -> None:
    """Refuse (:class:`ConfigError`) a ``val/*`` monitor with no validation examples: the checkpoint that is
    tested would be chosen by NaN (the first epoch's)."""
    if cfg.facts.get("num_val", 1) > 0 or not train:
        return
    sections = [*(cfg.get("callbacks") or {}).values(), cfg.model]
    monitors = [str(c.get(key)) for c in sections if isinstance(c, DictConfig)
                for key in ("monitor", "scheduler_monitor") if str(c.get(key, "")).startswith("val/")]
    if monitors:
        raise ConfigError(f"data={cfg.get('data_name')} leaves no validation examples with these settings, "
                          f"so {monitors[0]} (which chooses the checkpoint that is tested) is undefined. "
                          f"Keep some validation data (e.g. data.split.val_frac=0.2 or data.val_size=5000), "
                          f"or train without selection: callbacks=none.")


# What else ends training when trainer.max_epochs=-1 (model.max_rounds: the delineation model's rounds).
STOPPERS = ("trainer.max_steps", "trainer.max_time", "model.max_rounds")


def check_settings(cfg: DictConfig) -> None:
    """Refuse (:class:`ConfigError`) the run-level settings no constructor checks (``seed``, ``threads``), and
    the trainer settings Lightning takes that leave no result (train nothing or forever, test nothing, no GPU)."""
    t = cfg.get("trainer") or {}
    epochs, train_batches, test_batches = t.get("max_epochs"), t.get("limit_train_batches"), t.get("limit_test_batches")
    try:
        checks.seed("seed", cfg.get("seed"), allow_null=True)
        if cfg.get("threads") is not None:  # intra-op CPU threads per process; null: PyTorch's one per core
            checks.integer("threads", cfg.threads, note=" (CPU threads per process), or null for one per core")
        if epochs == -1 and all(OmegaConf.select(cfg, k, default=None) in (None, -1) for k in STOPPERS):
            raise ValueError("trainer.max_epochs=-1: would train forever: give a number of epochs, or set "
                             "trainer.max_steps=N or trainer.max_time=DD:HH:MM:SS to end it (models trained in rounds "
                             "stop themselves)")
        if epochs not in (None, -1):
            checks.integer("trainer.max_epochs", epochs, note=" (or -1 with trainer.max_steps for no epoch limit)")
        if train_batches in (0, 0.0) and cfg.get("train", True):
            raise ValueError(f"trainer.limit_train_batches={train_batches}: must be > 0: a number of batches >= 1 or "
                             f"a fraction in (0, 1] (0 trains nothing; use train=false to only test a checkpoint)")
        if test_batches in (0, 0.0) and cfg.get("test", True):
            raise ValueError(f"trainer.limit_test_batches={test_batches}: the run would test nothing and have no "
                             f"result: use test=false to skip testing, or a number of batches >= 1 (or a fraction)")
        if str(t.get("accelerator")) in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ValueError(f"trainer.accelerator={t.get('accelerator')}: no GPU is visible on this machine"
                             f": use trainer=cpu (or run where GPUs are visible; check CUDA_VISIBLE_DEVICES)")
    except ValueError as err:
        raise ConfigError(str(err)) from None
