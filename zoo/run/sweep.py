"""Sweeps you can trust (docs/reliability.md): a failed job is recorded in its ``error.txt`` and scores the worst
value; the same command again finishes the sweep (finished jobs kept, unfinished resumed, failed re-run).
:func:`admit_sweep` locks the sweep folder and refuses another command or changed config files."""

import atexit
import contextlib
import importlib.util
import json
import logging
import math
import multiprocessing
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

import zoo.signals as signals
from zoo.errors import ConfigError, ZooError
from zoo.files import ERROR_FILE, HYDRA_DIR, METRICS_FILE, SWEEP_RECORD, atomic_write
from zoo.keys import flatten, neutral
from zoo.run import rundir
from zoo.run.rundir import record_failure

log = logging.getLogger("zoo.sweep")


def worst_value() -> float:
    """What a failed trial scores: -inf when the sweeper maximises, +inf when it minimises, else NaN."""
    direction = str(HydraConfig.get().sweeper.get("direction", "")).lower() if HydraConfig.initialized() else ""
    if "max" in direction:
        return -math.inf
    if "min" in direction:
        return math.inf
    return math.nan


def finish_hint(sweep_dir: str | Path) -> str:
    """How to finish the sweep in ``sweep_dir``, with the exact command when this process is that command."""
    program = Path(sys.argv[0]).name if sys.argv else ""
    command = ""
    if program in ("train.py", "eval.py", "zoo-train", "zoo-eval"):  # not a SLURM job or a worker
        args = [a for a in sys.argv[1:] if not a.startswith("hydra.sweep.dir=")]
        start = f"python {shlex.quote(sys.argv[0])}" if program.endswith(".py") else program
        command = ", i.e. " + " ".join([start, *map(shlex.quote, args), shlex.quote(f"hydra.sweep.dir={sweep_dir}")])
    return (f"Finish the sweep with the same command plus hydra.sweep.dir={sweep_dir}{command} (finished jobs are "
            f"kept as they are, unfinished ones resume from their last.ckpt, failed ones run again).")


def install_signals(cfg: DictConfig) -> None:
    """Stop signals in a process that runs a job: the hint finishes the sweep, or resumes the run."""
    launcher = HydraConfig.get().launcher if HydraConfig.initialized() else {}
    bound = launcher.get("max_num_timeout") if "SlurmLauncher" in str(launcher.get("_target_", "")) else None
    signals.install(lambda: finish_hint(HydraConfig.get().sweep.dir) if rundir.in_multirun()
                    else signals.run_hint(cfg.paths.output_dir, trained=cfg.get("train", True)),
                    max_requeues=int(cfg.get("max_requeues") or 0 if bound is None else bound))


def job_name(job_dir: Path, sweep_dir: str | Path | None = None) -> str:
    """A job's folder within its sweep's (``hydra.sweep.subdir``, which may hold a ``/``)."""
    sweep_dir = sweep_dir or (HydraConfig.get().sweep.dir if HydraConfig.initialized() else None)
    return os.path.relpath(job_dir, sweep_dir) if sweep_dir else job_dir.name


def _stored_overrides(job_dir: Path) -> list[str] | None:
    path = job_dir / HYDRA_DIR / "overrides.yaml"
    return rundir.as_typed(OmegaConf.load(path)) if path.is_file() else None


def defining(overrides: list[str]) -> dict[str, str]:
    """``{key: value}`` of the overrides that can change a result: a re-run may change the others (where files go,
    what is shown) freely."""
    pairs = (override.partition("=") for override in overrides)
    return {key: value for key, _, value in pairs if not neutral(key.lstrip("+~"))}


def finished_value(job_dir: Path, overrides: list[str], metric: str | None) -> float | None:
    """The stored value of a finished sweep job; None: it runs. :class:`ConfigError` (the sweep stops): its folder
    holds a finished job of other settings (a sweeper that proposes other values when run again, as Optuna may)."""
    if rundir.status(job_dir) != "finished":
        return None
    stored = _stored_overrides(job_dir)
    if stored is not None and defining(stored) != defining(overrides):
        differ = "; ".join(_differences(defining(stored), defining(overrides)))
        raise ConfigError(f"Sweep job {job_name(job_dir)}: {job_dir} holds a finished job of other settings "
                          f"({differ}); the sweeper now proposes other values for it than when it ran. The sweep "
                          f"stops: its finished jobs are kept as they are. Give a new hydra.sweep.dir to run it.")
    log.info("Sweep job %s is done (%s): kept as it is.", job_name(job_dir), job_dir / METRICS_FILE)
    value = json.loads((job_dir / METRICS_FILE).read_text()).get(metric)
    return worst_value() if value is None else float(value)


def resumes(job_dir: Path) -> bool:
    """Whether a sweep job continues from its checkpoint (stopped, requeued, or its sweep re-run); logs it."""
    if not rundir.checkpoints(job_dir):
        return False
    log.info("Sweep job %s resumes from its checkpoint in %s.", job_name(job_dir), job_dir)
    return True


def run_job(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """Run ``task(cfg)``; in a multirun, finish the job (see the module doc), an error scoring the worst value."""
    install_signals(cfg)
    if not rundir.in_multirun():
        return _single_run(task, cfg)
    _finish_wandb_run(exit_code=0)  # a run left open by an earlier job of this process
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    _check_own_folder(job_dir, hc.job.num)  # outside the job's try: the sweep stops
    finished = finished_value(job_dir, rundir.as_typed(hc.overrides.task), cfg.get("optimized_metric"))
    if finished is not None:
        return finished
    rundir.set_aside_failure(job_dir)
    if resumes(job_dir) and cfg.get("ckpt_path") is None:  # a stopped, requeued or re-run job: resume it
        with open_dict(cfg):
            cfg.auto_resume = True
    if signals.received():  # this process was told to stop: start no other job
        raise SystemExit(signals.exit_code(signals.received()))
    try:
        with rundir.session(job_dir):
            value = task(cfg)
    except rundir.InUseError:  # its folder is another job's, running: record nothing there, stop the sweep
        raise
    except SystemExit as stop:
        if signals.received() and multiprocessing.current_process().name != "MainProcess":
            logging.shutdown()  # a pool worker (hydra/launcher=joblib) leaves the pool: it would take the next job
            os._exit(stop.code if isinstance(stop.code, int) else 1)
        raise
    except Exception as err:  # noqa: BLE001 - any job error must not stop the sweep
        path = record_failure(job_dir, err) if rundir.slurm_rank() == 0 else job_dir / ERROR_FILE
        _finish_wandb_run(exit_code=1)
        log.error("Sweep job %s FAILED: %s: %s -- traceback in %s; the sweep goes on.",
                  job_name(job_dir), type(err).__name__, err, path)
        return worst_value()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        log.warning("Sweep job %s returned no value for optimized_metric=%s; scoring it as the worst.",
                    job_name(job_dir), cfg.get("optimized_metric"))
        return worst_value()
    return value


def check_job_folder(job_dir: Path, sweep_dir: str | Path) -> None:
    """Refuse a job folder that is not a folder of its own inside the sweep folder (``hydra.sweep.subdir``)."""
    if Path(sweep_dir).resolve() not in job_dir.resolve().parents:
        raise ConfigError(f"hydra.sweep.subdir gives a job the folder {job_dir}, which is not a folder of its own in "
                          f"the sweep folder {sweep_dir}: give a relative one, e.g. ${{hydra.job.num}}. The sweep "
                          f"stops before the job: a sweep's jobs are all in its folder, and never the folder itself.")


def _check_own_folder(job_dir: Path, num: int) -> None:
    """Refuse a job whose folder is not its own in the sweep folder, or that Hydra recorded for another job of the
    sweep (``.hydra/hydra.yaml``)."""
    check_job_folder(job_dir, HydraConfig.get().sweep.dir)
    record = job_dir / HYDRA_DIR / "hydra.yaml"
    try:
        owner = OmegaConf.select(OmegaConf.load(record), "hydra.job.num") if record.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged record names no other job
        owner = None
    if owner not in (None, num):
        raise shared_folder(job_dir, owner, num)


def shared_folder(job_dir: Path, first: int, second: int) -> ConfigError:
    """The refusal of a sweep whose jobs ``first`` and ``second`` would share the folder ``job_dir``."""
    return ConfigError(f"hydra.sweep.subdir gives jobs {first} and {second} the same folder {job_dir}: include "
                       f"${{hydra.job.num}} (or every swept key) in it. The sweep stops: no job writes over another's.")


def _single_run(task: Callable[[DictConfig], float | None], cfg: DictConfig) -> float | None:
    """A run without ``-m``: a refusal before training removes the folder this command made (an evaluation's or a
    time-stamped one); another given ``hydra.run.dir`` is kept, marked failed."""
    run_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else None
    if run_dir is not None and rundir.status(run_dir) == "failed":
        rundir.set_aside_failure(run_dir)
    try:
        with rundir.session(run_dir):
            return task(cfg)
    except ZooError as err:
        if run_dir is not None and rundir.slurm_rank() == 0 and rundir.status(run_dir) == "fresh":
            given = any(o.startswith("hydra.run.dir=") and not stamped(o)  # a time-stamped one: new each time
                        for o in rundir.as_typed(HydraConfig.get().overrides.hydra))
            if run_dir.absolute() in made_here and (not cfg.get("train", True) or not given):
                remove_made(run_dir)
            else:
                record_failure(run_dir, f"refused before training: {err}")
        raise


STAMPS = ("${zoo_stamp:", "${now:")  # in hydra.run.dir or hydra.sweep.dir: a new folder each time (the defaults)
made_here: dict[Path, Path] = {}  # run folder this command creates -> the first folder of its path it creates


def stamped(folder: object) -> bool:
    """Whether a run or sweep folder setting, as written, is time-stamped (new for every command)."""
    return any(stamp in str(folder) for stamp in STAMPS)


def note_made(run_dir: Path) -> None:
    """Remember, before it does, that this command creates ``run_dir`` (and which of its parents)."""
    top = run_dir.absolute()
    while not top.parent.exists():
        top = top.parent
    if not top.exists():
        made_here[run_dir.absolute()] = top


def run_folder(config: DictConfig) -> Path:
    """A single run's folder: ``hydra.run.dir``, resolved once; a time-stamped one (the default) of its own."""
    folder = Path(str(config.hydra.run.dir))
    if stamped(OmegaConf.to_container(config.hydra.run)["dir"]) and rundir.slurm_task() is None:
        return claim(folder)  # runs started in the same second never meet (SLURM's tasks of one step do)
    note_made(folder)
    return folder


def claim(run_dir: Path) -> Path:
    """A time-stamped run or sweep folder of this command's own: ``run_dir``, else ``run_dir_2``, ``_3``... where
    commands started in the same second made it first (each folder is made by one command only)."""
    folder, n = run_dir, 1
    while True:
        note_made(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            made_here.pop(folder.absolute(), None)
            n += 1
            folder = run_dir.with_name(f"{run_dir.name}_{n}")


def remove_made(run_dir: Path) -> None:
    """Remove a run folder this command created, with the parents it created for it: a refusal leaves nothing."""
    top = made_here.pop(run_dir.absolute(), None)
    if top is not None:
        shutil.rmtree(top, ignore_errors=True)


def _finish_wandb_run(exit_code: int) -> None:
    """Close a job's W&B run: the next job of the same process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


# Before the first job and after the last: the sweep folder.


def missing_extra(config: DictConfig) -> str | None:
    """The launcher or sweeper whose package is not installed (they come with the ``sweeps`` extra)."""
    for key in ("hydra.launcher._target_", "hydra.sweeper._target_"):
        target = str(OmegaConf.select(config, key, default="") or "")
        module = target.rpartition(".")[0]
        if target.startswith("hydra_plugins.zoo_hydra.slurm"):
            module = "hydra_plugins.hydra_submitit_launcher"
        try:
            found = not module or importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{key.removesuffix('._target_')} ({target})"
    return None


def _sweep_keys(config: DictConfig) -> dict[str, str]:
    """What defines a sweep: its task overrides (``key=value``), the sweeper's own parameters and where its jobs go
    (``hydra.sweep.subdir``, as written)."""
    keys = defining(rundir.as_typed(config.hydra.overrides.task))
    keys["hydra.sweep.subdir"] = str(OmegaConf.to_container(config.hydra.sweep)["subdir"])
    for part in ("params", "grid"):  # grid: hydra/sweeper=grid
        found = OmegaConf.select(config, f"hydra.sweeper.{part}", default=None) or {}
        keys.update({f"hydra.sweeper.{part}.{k}": str(v) for k, v in flatten(found).items()})
    return keys


def _settings(config: DictConfig) -> dict:
    """A job's config as ``{dotted key: value}``, unresolved, without the keys that never change a result."""
    return {k: v for k, v in flatten(OmegaConf.to_container(config, resolve=False)).items() if not neutral(k)}


def _differences(old: dict, new: dict) -> list[str]:
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k, "<unset>") != new.get(k, "<unset>"))
    return [f"{k}: {old.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in differ]


def check_same_sweep(config: DictConfig, sweep_dir: Path) -> None:
    """Refuse (naming the keys) another command's sweep, or jobs whose overrides, composed again from today's config
    files, differ from their ``.hydra/config.yaml``."""
    from hydra import compose

    record = sweep_dir / SWEEP_RECORD
    if not record.is_file():
        inner = rundir.held_below(sweep_dir)
        if inner is not None:
            raise ConfigError(f"{sweep_dir} holds runs or sweeps ({inner.relative_to(sweep_dir)}) but no "
                              f"{SWEEP_RECORD}: it is not a Zoo sweep. Give another hydra.sweep.dir.")
        return
    try:
        stored = _sweep_keys(OmegaConf.load(record))
    except Exception as err:  # noqa: BLE001 - a damaged record: refuse rather than guess
        raise ConfigError(f"{record} cannot be read ({err}): give another hydra.sweep.dir.") from err
    differ = _differences(stored, _sweep_keys(config))
    if differ:
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir} holds another sweep ({'; '.join(differ)}). Re-run its own command to finish "
            f"it, or give a new hydra.sweep.dir for this one; Zoo never mixes two sweeps' jobs."
        )
    searchpath = [o for o in rundir.as_typed(config.hydra.overrides.hydra) if o.startswith("hydra.searchpath=")]
    for job in job_dirs(sweep_dir):
        overrides, recorded, name = _stored_overrides(job), job / HYDRA_DIR / "config.yaml", job_name(job, sweep_dir)
        if overrides is None or not recorded.is_file():
            continue
        try:
            now = compose(str(config.hydra.job.config_name), overrides=[*searchpath, *overrides])
        except Exception as err:  # noqa: BLE001 - a config file removed or broken since: refuse, naming it
            raise ConfigError(f"hydra.sweep.dir={sweep_dir}: job {name} can no longer be composed from the config "
                              f"files ({str(err).splitlines()[0]}). Put them back to finish this sweep, or give a new "
                              f"hydra.sweep.dir.") from err
        differ = _differences(_settings(OmegaConf.load(recorded)), _settings(now))
        if differ:
            raise ConfigError(
                f"hydra.sweep.dir={sweep_dir}: the config files changed since its jobs ran; job {name} would now "
                f"run with {'; '.join(differ[:6])}{'; ...' if len(differ) > 6 else ''}. Put the config files back "
                f"to finish this sweep, or give a new hydra.sweep.dir to sweep the new settings."
            )


_first_record: dict[Path, tuple[bytes, tuple[int, int]]] = {}  # multirun.yaml -> its content and times


def admit_sweep(config: DictConfig) -> None:
    """Before any job: a writable sweep folder outside any run, locked; :func:`check_same_sweep`; and say how to
    finish the sweep."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    rundir.check_outside_runs("hydra.sweep.dir", sweep_dir, sweep_dir)  # before anything is written
    outer = rundir.sweep_above(sweep_dir)
    if outer is not None:
        raise ConfigError(f"hydra.sweep.dir={sweep_dir} lies in the sweep folder {outer}: Zoo never mixes two "
                          f"sweeps' jobs. Give a folder outside it (or leave hydra.sweep.dir out).")
    given = any(o.startswith("hydra.sweep.dir=") for o in rundir.as_typed(config.hydra.overrides.hydra))
    written = OmegaConf.to_container(config.hydra.sweep)  # as written; the subdir is resolved at each job
    check_job_folder(sweep_dir / str(written["subdir"] or ""), sweep_dir)  # before anything is written
    if stamped(written["dir"]):
        sweep_dir = claim(sweep_dir)  # sweeps started in the same second never meet: each job's config reads it
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = str(sweep_dir)
            config.hydra.overrides.hydra = [*(o for o in rundir.as_typed(config.hydra.overrides.hydra)
                                              if not o.startswith("hydra.sweep.dir=")), f"hydra.sweep.dir={sweep_dir}"]
    rundir.check_writable(sweep_dir)
    rundir.acquire(sweep_dir)  # held until this process ends
    check_same_sweep(config, sweep_dir)
    done = sum(rundir.status(job) == "finished" for job in job_dirs(sweep_dir))
    if done:
        log.info("Finishing the sweep in %s: %d finished job(s) are kept as they are.", sweep_dir, done)
    if stamped(written["dir"]) or not given:  # a folder the command did not name
        log.info("Sweep folder: %s. If the sweep stops or a job fails: %s", sweep_dir, finish_hint(sweep_dir))
    signals.install(lambda: finish_hint(sweep_dir))
    signals.on_stop(_stop_workers)
    record = sweep_dir / SWEEP_RECORD
    if record.is_file():  # Hydra writes it again at launch: the sweep's first record is put back at its end
        times = record.stat()
        _first_record[record] = record.read_bytes(), (times.st_atime_ns, times.st_mtime_ns)
        atexit.register(keep_sweep_record)  # however the sweep ends
    else:  # Hydra's basic sweeper writes it, other sweepers (Optuna) do not: every sweep has its record
        atomic_write(record, lambda f: f.write(OmegaConf.to_yaml(config).encode()))


def keep_sweep_record() -> None:
    """Put back the ``multirun.yaml`` a finished-again sweep started with (its record is never rewritten)."""
    while _first_record:
        path, (content, times) = _first_record.popitem()
        if path.read_bytes() != content:
            atomic_write(path, lambda f, content=content: f.write(content))
        os.utime(path, ns=times)


def _stop_workers() -> None:
    """End this process's workers (``hydra/launcher=joblib``): SIGTERM (each stops its job as a run does), SIGKILL
    after 30 s; nothing runs or writes after the sweep exits."""
    workers = multiprocessing.active_children()
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + 30
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may end between the check and the kill
                os.kill(worker.pid, signal.SIGKILL)
            worker.join(5)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep, at any depth: each holds ``.hydra/`` or (a job that died before Hydra ran)
    ``error.txt``."""
    return sorted({p.parent for name in (HYDRA_DIR, ERROR_FILE) for p in sweep_dir.rglob(name)})


def report_failed_jobs(config: DictConfig) -> None:
    """At the end of a sweep: list the jobs that failed (no ``metrics.json``) and exit 1 if any did."""
    keep_sweep_record()
    sweep_dir = Path(str(config.hydra.sweep.dir))
    jobs = job_dirs(sweep_dir)
    failed = [job for job in jobs if rundir.status(job) != "finished"]
    if not failed:
        log.info("Sweep finished: %d jobs recorded in %s.", len(jobs), sweep_dir)
        return
    lines = "\n".join(f"  {job_name(job, sweep_dir)}: {_reason(job)}" for job in failed)
    log.error("Sweep finished with %d FAILED job(s) of %d (the others are recorded in %s):\n%s\n%s",
              len(failed), len(jobs), sweep_dir, lines, finish_hint(sweep_dir))
    raise SystemExit(1)


def _reason(job: Path) -> str:
    error = job / ERROR_FILE
    if error.is_file():
        lines = [line for line in error.read_text(errors="replace").splitlines() if line.startswith("error: ")]
        return lines[0] if lines else f"see {error}"
    return "no metrics.json and no error.txt: the job was killed or crashed (see its log)"
