"""Read run directories into records: what ran (model, data, effective config), on which split, with what result.

A run directory is a folder holding ``.hydra/`` (as ``train.py`` and ``eval.py`` leave it). Its record:

* **names**: the model and data config choices of ``.hydra/hydra.yaml``. An evaluation (``eval.py``: ``train:
  false`` and a ``ckpt_path``) is named after the checkpoint it tested: the run record saved in the checkpoint
  (``zoo.RunRecord``), else the training run's own ``.hydra/`` (the checkpoint's run directory).
* **effective config**: ``.hydra/config.yaml`` as written (interpolations kept, so ``data.split.seed: ${seed}`` follows
  the seed), with the history of the changes later sessions accepted (``resume_accept`` in
  ``.hydra/resumed_<time>/``, or of a run that continued another run's checkpoint in a folder of its own:
  ``0.1 -> 0.05 (resumed)``, so a resumed run never groups with a fresh one), minus the
  keys that never change a result (:data:`NEUTRAL`), the keys that pick the split (:data:`SPLIT_KEYS`) and the keys
  that follow from the data's facts (``${facts.*}``: the data's name already says them).
* **split**: the seed, the split seed, and the k-fold fold and repeat (:data:`SPLIT_KEYS`, recorded as
  ``seed``, ``split_seed``, ``fold``, ``repeat``). Runs of two models on the same split test
  the same nodes, so they pair up.
* **status**: ``done`` (``metrics.json`` with a finite ``test/acc``), ``failed`` (``error.txt``), ``unfinished``,
  or ``skipped`` (a damaged folder: one warning line, no traceback).
"""

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from zoo.errors import ZooError
from zoo.files import CHECKPOINT_DIR, ERROR_FILE, HYDRA_DIR, LAST_CKPT, METRICS_FILE, RECORD_KEY
from zoo.keys import flatten, neutral, under

log = logging.getLogger(__name__)

# Keys that pick which split a run tested on, and the name a run's split record gives each: they vary between the
# runs of one group, and pair runs across groups. data.split.*: a graph's node split (datamodules/splits.py);
# data.split_seed: the validation split of the image DataModules.
SPLIT_KEYS: dict[str, str] = {"seed": "seed", "data.split.seed": "split_seed", "data.split_seed": "split_seed",
                              "data.split.fold": "fold", "data.split.repeat": "repeat"}
# Keys that shape the split (which nodes are tested) or its labelled part: only groups that agree on all of them are
# compared, in one table per dataset and setting (e.g. per label rate). data.split._target_: the split's kind.
SPLIT_SHAPE: tuple[str, ...] = ("data.split._target_", "data.split.train_frac", "data.split.val_frac",
                                "data.split.folds", "data.split.train_per_class", "data.split.val_per_class",
                                "data.val_size", "data.split.label_rate", "data.split.labels_per_class")


ABSENT = "(unset)"  # a key a resumed session added or removed


class NothingToCompare(ZooError):
    """No finished run to compare under the folder given; the message says what was found."""


class Damaged(Exception):
    """A run directory whose record cannot be read; the message says which file and why."""


@dataclass
class Run:
    """One run directory's record (see the module doc)."""

    path: Path
    status: str
    reason: str = ""
    model: str | None = None
    data: str | None = None
    kind: str = "train"  # "eval": an eval.py run of a checkpoint
    config: dict[str, str] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    wandb: dict[str, Any] | None = None  # the run's logger.wandb settings, if it logged to W&B
    tuned: tuple[str, ...] = ()  # keys a settings grid chose (hydra.sweeper.grid of hydra/sweeper=grid)
    job: int | None = None  # hydra.job.num: a grid's points in the order listed


def as_text(value: Any) -> str:
    """A config value as compared and shown: lists and mappings as JSON, the rest as ``str``."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _load_yaml(path: Path) -> DictConfig:
    try:
        node = OmegaConf.load(path)
    except Exception as err:  # YAML errors, decoding errors, a list at the top
        raise Damaged(f"{path.relative_to(path.parent.parent)} cannot be read ({type(err).__name__}: "
                      f"{str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(node, DictConfig):
        raise Damaged(f"{path.relative_to(path.parent.parent)} holds no mapping")
    return node


def _hydra(hydra_dir: Path) -> DictConfig:
    path = hydra_dir / "hydra.yaml"
    if not path.is_file():
        raise Damaged(f"{hydra_dir.name}/hydra.yaml is missing")
    return _load_yaml(path)


def _choices(hydra_dir: Path, node: DictConfig | None = None) -> dict[str, Any]:
    choices = OmegaConf.select(_hydra(hydra_dir) if node is None else node, "hydra.runtime.choices")
    if not isinstance(choices, DictConfig) or not choices.get("model") or not choices.get("data"):
        raise Damaged(f"{hydra_dir.name}/hydra.yaml records no config choices (empty or cut off)")
    return dict(choices)


def _grid(node: DictConfig) -> tuple[tuple[str, ...], int | None]:
    """The keys a settings grid swept for this job (``hydra.sweeper.grid``, hydra_plugins/zoo_hydra/grid.py),
    and its job number."""
    grid = OmegaConf.select(node, "hydra.sweeper.grid", throw_on_resolution_failure=False)
    overrides = OmegaConf.select(node, "hydra.overrides.task", throw_on_resolution_failure=False) or []
    num = OmegaConf.select(node, "hydra.job.num", throw_on_resolution_failure=False)
    if not isinstance(grid, DictConfig):
        return (), num if isinstance(num, int) else None
    tuned = [str(k) for trigger, sweeps in grid.items() if trigger in list(overrides) and isinstance(sweeps, DictConfig)
             for k in sweeps]
    return tuple(sorted(set(tuned))), num if isinstance(num, int) else None


def _config(hydra_dir: Path) -> DictConfig:
    path = hydra_dir / "config.yaml"
    if not path.is_file():
        raise Damaged(f"{hydra_dir.name}/config.yaml is missing")
    cfg = _load_yaml(path)
    if "model" not in cfg or "data" not in cfg:
        raise Damaged(f"{hydra_dir.name}/config.yaml has no model or data section (empty or cut off)")
    return cfg


def _metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    if not path.is_file():
        return {}
    try:  # Python's json reads NaN and -Infinity; a cut-off file is damaged
        metrics = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise Damaged(f"metrics.json is not valid JSON, cut off? ({err})") from err
    if not isinstance(metrics, dict):
        raise Damaged("metrics.json holds no mapping")
    return metrics


def _accepted_changes(run_dir: Path, flat: dict[str, Any], choices: dict[str, Any]) -> None:
    """Apply, in time order, the changes later sessions accepted (``.hydra/resumed_<time>/``, ``resume_accept``;
    a session that ran nothing is ``ran_nothing_<time>/``: zoo.run.rundir.session)."""
    for record in sorted((run_dir / HYDRA_DIR).glob("resumed_*")):
        try:
            cfg = _config(record)
        except Damaged:
            continue  # a session that never started; it changed nothing
        accepted = [str(k) for k in (OmegaConf.select(cfg, "resume_accept") or [])]
        if not accepted:
            continue
        _mark_changes(flat, flatten(OmegaConf.to_container(cfg, resolve=False)), accepted)
        if any(a in ("data", "model") for a in accepted):
            try:
                new_choices = _choices(record)
            except Damaged:
                continue
            choices.update({g: new_choices.get(g) for g in ("data", "model") if g in accepted})


def _mark_changes(flat: dict[str, Any], new: dict[str, Any], accepted: list[str]) -> None:
    """``flat[key] = "<before> -> <after> (resumed)"`` for each accepted key whose value ``new`` changed: the run
    trained with one, then the other (its own history, never grouped with a run of either value)."""
    for key in sorted({k for k in (*flat, *new) if under(k, accepted)}):
        before, after = flat.get(key, ABSENT), new.get(key, ABSENT)
        if as_text(before) != as_text(after):
            flat[key] = f"{as_text(before)} -> {as_text(after)} (resumed)"


def _continued_elsewhere(run_dir: Path, cfg: DictConfig, node: DictConfig) -> bool:
    """Whether a training run continued a checkpoint of another run (``ckpt_path`` outside its own folder)."""
    ckpt = cfg.get("ckpt_path")
    if not ckpt or ckpt == "last" or cfg.get("train", True) is False:
        return False
    cwd = OmegaConf.select(node, "hydra.runtime.cwd", throw_on_resolution_failure=False)
    candidates = _checkpoint_paths(str(ckpt), run_dir, Path(cwd) if isinstance(cwd, str) and cwd else None)
    return not any(run_dir.resolve() in p.resolve().parents for p in candidates)


def _checkpoint_paths(ckpt: str, run_dir: Path, started_in: Path | None) -> list[Path]:
    """Where ``ckpt_path`` may point: as given if absolute, else from the directory ``eval.py`` was started in
    (``hydra.runtime.cwd``), the working directory or a folder above the run. ``best`` and ``last`` name the run
    directory eval.py was started in; a run directory stands for its tested (best) checkpoint."""
    if ckpt in ("best", "last"):
        return [started_in] if started_in is not None else []
    path = Path(ckpt)
    bases = [b for b in (started_in, Path.cwd(), *run_dir.resolve().parents) if b is not None]
    return [path] if path.is_absolute() else [base / path for base in bases]


def _tested_file(home: Path) -> Path | None:
    """The checkpoint file a run directory's evaluation tested: its one ``epoch_*.ckpt`` (else none known)."""
    kept = sorted((home / CHECKPOINT_DIR).glob("epoch_*.ckpt"))
    return kept[0] if len(kept) == 1 else None


def checkpoint_record(path: Path) -> dict[str, Any] | None:
    """The flat resolved config saved in a checkpoint's run record, or ``None`` (no record, unreadable file)."""
    import torch
    import yaml

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        record = (ckpt.get("callbacks") or {}).get(RECORD_KEY) or {}
        return flatten(yaml.safe_load(record["config"])) if record.get("config") else None
    except Exception:  # a truncated or foreign file: no record
        return None


def _trained_source(run_dir: Path, cfg: DictConfig, node: DictConfig) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """For an evaluation: the flat config, the choices and the seed of the run that trained the checkpoint it
    tested (an evaluation's own seed is not the training run's)."""
    ckpt = str(cfg.ckpt_path)
    cwd = OmegaConf.select(node, "hydra.runtime.cwd", throw_on_resolution_failure=False)
    candidates = _checkpoint_paths(ckpt, run_dir, Path(cwd) if isinstance(cwd, str) and cwd else None)
    found = next((p for p in candidates if p.is_file()), None)
    folder = next((p for p in candidates if (p / CHECKPOINT_DIR).is_dir()), None)
    if found is not None:
        homes = [found.parent.parent if found.parent.name == CHECKPOINT_DIR else found.parent]
    elif folder is not None:  # ckpt_path=<run dir>, best or last
        homes = [folder]
        found = folder / CHECKPOINT_DIR / LAST_CKPT if ckpt == "last" else _tested_file(folder)
        found = found if found is not None and found.is_file() else None
    else:  # the file is gone; the run directory that held it may still be there
        homes = [p.parent.parent for p in candidates if p.parent.name == CHECKPOINT_DIR]
    trained_dir = next((h for h in homes if (h / HYDRA_DIR).is_dir()), None)
    record = checkpoint_record(found) if found is not None else None
    if trained_dir is not None:
        try:
            choices = _choices(trained_dir / HYDRA_DIR)
            flat = flatten(OmegaConf.to_container(_config(trained_dir / HYDRA_DIR), resolve=False))
        except Damaged:
            choices, flat = {}, {}
        same = record is None or (record.get("model_name"), record.get("data_name")) == (
            choices.get("model"), choices.get("data"))
        if choices and same:  # the training run's own record, written as every other run's
            _accepted_changes(trained_dir, flat, choices)
            try:
                seed = _metrics(trained_dir).get("seed", flat.get("seed"))
            except Damaged:
                seed = flat.get("seed")
            return flat, choices, seed if record is None else record.get("seed", seed)
    if record is not None and record.get("model_name") and record.get("data_name"):
        facts = {as_text(v) for k, v in record.items() if k.startswith("facts.")}
        resolved = {k: v for k, v in record.items() if k.startswith("facts.") or as_text(v) not in facts}
        return resolved, {"model": record.get("model_name"), "data": record.get("data_name")}, record.get("seed")
    raise Damaged(f"it tested ckpt_path={ckpt}, whose model cannot be told: the file and its run's .hydra/ are "
                  f"not found from here")


def _split(cfg: DictConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    """Seed, split seed, fold and repeat, resolved (``data.split.seed: ${seed}`` takes the run's seed)."""
    seed = metrics.get("seed", OmegaConf.select(cfg, "seed", throw_on_resolution_failure=False))
    cfg = cfg.copy()
    OmegaConf.update(cfg, "seed", seed, force_add=True)
    split = {"seed": seed, "split_seed": None, "fold": None, "repeat": None}
    for key, name in SPLIT_KEYS.items():
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if key != "seed" and split[name] is None:  # data.split.seed, else data.split_seed
            split[name] = value if isinstance(value, int | float | str) else None
    return split


def _wandb_settings(cfg: DictConfig) -> dict[str, Any] | None:
    section = OmegaConf.select(cfg, "logger.wandb", throw_on_resolution_failure=False)
    if not isinstance(section, DictConfig):
        return None
    node = OmegaConf.create(OmegaConf.to_container(section, resolve=False))
    return {k: OmegaConf.select(node, k, throw_on_resolution_failure=False) for k in ("project", "entity", "mode")}


def _failure(run_dir: Path) -> str:
    text = (run_dir / ERROR_FILE).read_text(errors="replace")
    error = text.split("\nerror: ", 1)[1].split("\n\n", 1)[0] if "\nerror: " in text else ""
    return " ".join(line.strip() for line in error.splitlines()) or ERROR_FILE


def read_run(run_dir: Path) -> Run:
    """The record of one run directory.

    Raises:
        Damaged: a file of its record is missing, empty, cut off or unreadable.
    """
    hydra_dir = run_dir / HYDRA_DIR
    node = _hydra(hydra_dir)
    choices, cfg, metrics = _choices(hydra_dir, node), _config(hydra_dir), _metrics(run_dir)
    kind = "eval" if cfg.get("train", True) is False and cfg.get("ckpt_path") else "train"
    if kind == "eval":
        flat, names, seed = _trained_source(run_dir, cfg, node)
        own = flatten(OmegaConf.to_container(cfg, resolve=False))
        accepted = [str(k) for k in (cfg.get("resume_accept") or [])]
        flat = {k: v for k, v in flat.items() if not under(k, accepted)}
        flat.update({k: v for k, v in own.items() if under(k, accepted)})
        names.update({g: choices.get(g) for g in ("data", "model") if g in accepted})
        source = OmegaConf.create(flat_to_nested(flat))
        split = _split(source, {"seed": seed} if seed is not None else {})
    else:
        flat = flatten(OmegaConf.to_container(cfg, resolve=False))
        names = dict(choices)
        accepted = [str(k) for k in (cfg.get("resume_accept") or [])]
        if accepted and _continued_elsewhere(run_dir, cfg, node):  # its first epochs ran with the source's values
            try:
                source = _trained_source(run_dir, cfg, node)[0]
            except Damaged:  # the source is gone: its own record, as a fresh run's
                source = None
            if source is not None:
                _mark_changes(source, flat, accepted)
                flat.update({k: v for k, v in source.items() if under(k, accepted)})
        _accepted_changes(run_dir, flat, names)
        split = _split(cfg, metrics)
    config = {k: as_text(v) for k, v in flat.items()
              if not neutral(k) and k not in ("model_name", "data_name") and k not in SPLIT_KEYS
              and "${facts." not in as_text(v)}
    run = Run(path=run_dir, status="done", model=names.get("model"), data=names.get("data"), kind=kind,
              config=config, split=split, metrics=metrics, wandb=_wandb_settings(cfg))
    run.tuned, run.job = _grid(node)
    acc = metrics.get("test/acc")
    if (run_dir / ERROR_FILE).is_file():
        run.status, run.reason = "failed", _failure(run_dir)
    elif not metrics:
        run.status, run.reason = "unfinished", "no metrics.json"
    elif acc is None:
        run.status, run.reason = "unfinished", "metrics.json without test/acc"
    elif not finite(acc):
        run.status, run.reason = "unfinished", f"test/acc is {acc} (not a number)"
    return run


def flat_to_nested(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten` (for resolving a flat config's interpolations)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[last] = value
    return nested


def run_dirs(root: Path) -> list[Path]:
    """Every run directory under ``root`` (a sweep folder, a folder of sweeps, or one run directory)."""
    found = set()
    for dirpath, dirnames, _ in os.walk(root):
        if HYDRA_DIR in dirnames:
            found.add(Path(dirpath))
        dirnames[:] = [d for d in dirnames if d not in (HYDRA_DIR, "wandb", CHECKPOINT_DIR)]
    return sorted(found)


def collect(root: Path) -> list[Run]:
    """The record of every run under ``root``; a damaged one is ``skipped`` with one warning line."""
    runs = []
    for run_dir in run_dirs(Path(root)):
        try:
            runs.append(read_run(run_dir))
        except Damaged as err:
            log.warning("Skipped %s: %s.", run_dir, err)
            runs.append(Run(path=run_dir, status="skipped", reason=str(err)))
    return runs
