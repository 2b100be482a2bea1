"""The run plan: what a run will do, decided once, before anything is built.

:func:`make_plan` reads the command's config and the run directory, and decides:

* the kind of run: ``fresh``; ``resume`` (``ckpt_path``, ``auto_resume``); ``finished`` (a resume of a run whose
  ``metrics.json`` exists: nothing to do, nothing rewritten); or ``eval`` (``train=false``: test a checkpoint);
* the checkpoint, read once (Lightning reads it again to restore its state);
* the effective config: the checkpoint's saved settings plus the changes ``resume_accept`` accepted
  (:func:`zoo.run.resume.reconcile`, which refuses a change that would not reach everything it touches).

What runs after reads the plan. The config it leaves is the effective one; :func:`zoo.run.runner.prepare` then
adds the data's facts and makes it read-only.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import zoo.checks as checks
from zoo.errors import ConfigError
from zoo.run.checkpoints import read_checkpoint
from zoo.run.resume import finished_metrics, reconcile
from zoo.run.rundir import CHECKPOINT_DIR, LAST_CKPT, checkpoints, continues_run


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

    @property
    def resume_epoch(self) -> int | None:
        """The last epoch a resumed run had finished (its history is kept up to it)."""
        return int(self.checkpoint.get("epoch", 0)) if self.kind == "resume" and self.checkpoint else None


FRESH = RunPlan("fresh")  # a new run that fits, then tests


def _best_in(run_dir: Path) -> Path:
    """The checkpoint a finished fit tested: the one ``epoch_*.ckpt``, or the best one ``last.ckpt`` records."""
    kept = sorted((run_dir / CHECKPOINT_DIR).glob("epoch_*.ckpt"))
    if len(kept) == 1:
        return kept[0]
    last = run_dir / CHECKPOINT_DIR / LAST_CKPT
    if kept and last.is_file():
        states = (read_checkpoint(last).get("callbacks") or {}).values()
        names = {Path(s["best_model_path"]).name for s in states if isinstance(s, Mapping) and s.get("best_model_path")}
        found = [p for p in kept if p.name in names]
        if len(found) == 1:
            return found[0]
    listed = ", ".join(p.name for p in checkpoints(run_dir))
    if not listed:
        raise ConfigError(f"ckpt_path={run_dir}: no checkpoints in {run_dir / CHECKPOINT_DIR} (the run kept none, or "
                          f"did not finish an epoch). Give the path of a .ckpt file, or another run directory.")
    raise ConfigError(f"ckpt_path=best: {run_dir} has no single best checkpoint (checkpoints: {listed}); give the "
                      f"path of one .ckpt file.")


def _eval_checkpoint(ckpt: str) -> str:
    """An evaluation's ``ckpt_path``: a file; a run directory or ``best`` (its best checkpoint); ``last``. ``best``
    and ``last`` are of the run directory you are in."""
    path = Path(ckpt)
    if ckpt in ("best", "last"):
        if not (Path.cwd() / CHECKPOINT_DIR).is_dir():
            raise ConfigError(f"ckpt_path={ckpt}: {Path.cwd()} is not a run directory (no checkpoints/). Run eval "
                              f"from inside the run directory, or give ckpt_path=<run dir> or the path of a .ckpt.")
        return str(_best_in(Path.cwd()) if ckpt == "best" else Path.cwd() / CHECKPOINT_DIR / LAST_CKPT)
    if path.is_dir():
        return str(_best_in(path))
    return ckpt


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to resume (or to test); ``None`` to start fresh.

    Raises:
        ConfigError: the checkpoint named does not exist, or ``train=false`` names none.
    """
    ckpt, run_dir = cfg.get("ckpt_path"), Path(cfg.paths.output_dir)
    if ckpt is not None and not cfg.get("train", True):
        ckpt = _eval_checkpoint(str(ckpt))
    elif continues_run(cfg) and ckpt == "last":
        ckpt = str(run_dir / CHECKPOINT_DIR / LAST_CKPT)
    elif continues_run(cfg):  # auto_resume: the newest of last.ckpt and Lightning's SLURM hpc_ckpt_<n>.ckpt
        found = [p for p in (run_dir / CHECKPOINT_DIR / LAST_CKPT, *run_dir.glob("hpc_ckpt_*.ckpt")) if p.is_file()]
        ckpt = str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    if ckpt is not None and not Path(ckpt).is_file():
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} does not exist ({ckpt}). Give the path of a .ckpt file, or "
            f"ckpt_path=last together with hydra.run.dir=<the run directory to resume>."
        )
    if ckpt is None and not cfg.get("train", True) and cfg.get("test", True):
        raise ConfigError("train=false tests a trained model: give ckpt_path=<path to a .ckpt file, or a run "
                          "directory>.")
    return ckpt


def make_plan(cfg: DictConfig, check: bool = True) -> RunPlan:
    """Decide the run (see the module doc); ``cfg`` becomes the effective config.

    ``check``: reconcile with the checkpoint (rank zero; DDP children start from rank zero's checked config). The run
    directory was checked when the run was admitted to it (:func:`zoo.run.rundir.admit`).
    """
    ckpt_path = resolve_checkpoint(cfg)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path is not None else None
    train, test = bool(cfg.get("train", True)), bool(cfg.get("test", True))
    kind = "fresh" if ckpt_path is None else "resume" if train else "eval"
    if not check:
        return RunPlan(kind, train, test, ckpt_path, checkpoint)
    changes = tuple(reconcile(cfg, ckpt_path, checkpoint))
    finished = finished_metrics(cfg, list(changes))
    if finished is not None:
        return RunPlan("finished", train, test, ckpt_path, checkpoint, changes, finished)
    return RunPlan(kind, train, test, ckpt_path, checkpoint, changes)


# What else ends training when trainer.max_epochs=-1 (model.max_rounds: the delineation model's rounds).
STOPPERS = ("trainer.max_steps", "trainer.max_time", "model.max_rounds")


def check_settings(cfg: DictConfig) -> None:
    """Refuse the run-level settings that no constructor checks, and those Lightning takes yet that leave no result.

    The classes a run builds check their own arguments (:func:`zoo.run.build.build` names the key), Lightning's
    Trainer its own (``trainer.devices``, ``trainer.limit_val_batches``...).

    Raises:
        ConfigError: ``seed`` or ``threads`` out of range; a trainer that would train nothing or forever, test nothing, or use a GPU
            this machine does not have.
    """
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
        if str(t.get("accelerator")) in ("gpu", "cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"trainer.accelerator={t.get('accelerator')}: no GPU is visible on this machine: use "
                                 f"trainer=cpu (or run where GPUs are visible; check CUDA_VISIBLE_DEVICES)")
    except ValueError as err:
        raise ConfigError(str(err)) from None
