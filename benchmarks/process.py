"""Comparisons 7-9, measured on whole ``python train.py`` commands in subprocesses, as a user runs them.

7: the fixed cost of a run: a command's wall time outside ``fit_seconds`` (imports, config composition, data
   loading, test, writing results), against the time of ``python -c "import torch, lightning"``.
8: sweep throughput: a grid of small image jobs through ``hydra/launcher=joblib`` (parallel processes) against
   the same grid one job after the other (Hydra's basic launcher), in jobs per hour.
9: sweep launchers: one 8-job grid through the local SLURM cluster (``hydra/launcher=slurm``), the basic launcher
   and joblib, in jobs per hour, with SLURM's per-job overhead (submission -> start, end -> result).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks.harness import Context, Row, Side, interleave, median, skipped

ROOT = Path(__file__).resolve().parents[1]
FIXED_COST = "7 fixed cost per run"
SWEEP = "8 sweep throughput"
LAUNCHERS = "9 sweep launchers"

# One training step, one validation and one test batch of the default job (MLP on MNIST): what is left of the
# wall time is the run's fixed cost.
ONE_STEP = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1"]
# Modules a plain image run does not need; they are imported lazily where they are used.
NOT_FOR_IMAGE_RUNS = ("torch_geometric", "pandas", "wandb", "geopandas", "optuna", "tensorboard", "submitit")


def _env(ctx: Context) -> dict[str, str]:
    """The subprocesses' environment: this checkout importable, the harness's data folder and thread count."""
    import torch

    env = {**os.environ, "ZOO_DATA_DIR": str(ctx.data_dir), "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if ctx.device.type == "cpu":
        env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


def _run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}")
    return seconds, proc


def _train_command(ctx: Context, run_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *overrides, f"trainer.accelerator={ctx.accelerator}",
            "data.download=false", f"paths.data_dir={ctx.data_dir}", f"hydra.run.dir={run_dir}"]


def _imports_beyond(importtime_log: str, baseline_log: str) -> tuple[float, list[str]]:
    """Seconds of imports a run adds to ``import torch, lightning`` and which of NOT_FOR_IMAGE_RUNS it loads."""

    def modules(text: str) -> dict[str, int]:
        found = re.findall(r"import time:\s+(\d+) \|\s+\d+ \| +(\S+)", text)
        return {name: int(us) for us, name in found}

    run, base = modules(importtime_log), modules(baseline_log)
    extra_us = sum(us for name, us in run.items() if name not in base)
    heavy = sorted({name.split(".")[0] for name in run} & set(NOT_FOR_IMAGE_RUNS))
    return extra_us / 1e6, heavy


# ------------------------------------------------------------------------------------ 7 fixed cost
def fixed_cost(ctx: Context, overrides: tuple[str, ...] = (), slack_s: float = 3.0) -> list[Row]:
    """Wall time of a one-step ``python train.py`` outside ``fit_seconds`` vs ``python -c "import torch, lightning"``.

    Both commands alternate; each is a fresh interpreter. Also records (from one extra ``-X importtime`` run)
    the import time the run adds to torch + Lightning and any unneeded heavy package it loads.
    """
    if not (ctx.data_dir / "MNIST" / "raw").is_dir():
        return [skipped(FIXED_COST, f"no MNIST in {ctx.data_dir}")]
    env, work = _env(ctx), ctx.work_dir / "fixed_cost"
    work.mkdir(parents=True, exist_ok=True)
    imports = [sys.executable, "-c", "import torch, lightning"]
    runs = {"n": 0}
    fits: list[float] = []

    def one_run(*extra: str) -> tuple[float, subprocess.CompletedProcess]:
        run_dir = work / f"run{runs['n']}"
        runs["n"] += 1
        seconds, proc = _run(_train_command(ctx, run_dir, *ONE_STEP, *overrides, *extra), env, work)
        fits.append(json.loads((run_dir / "metrics.json").read_text())["fit_seconds"])
        return seconds, proc

    def ours() -> float:
        seconds, _ = one_run()
        return seconds - fits[-1]

    def baseline() -> float:
        return _run(imports, env, work)[0]

    times = interleave({"ours": ours, "import": baseline}, ctx.repeats, ctx.warmup)
    ours_s, import_s = median(times["ours"]), median(times["import"])
    # Which imports the run adds (one more run each, untimed: -X importtime slows imports down).
    base_log = subprocess.run([sys.executable, "-X", "importtime", *imports[1:]], env=env, cwd=work,
                              capture_output=True, text=True, check=False).stderr
    _, traced = _run([sys.executable, "-X", "importtime", *_train_command(ctx, work / "traced", *ONE_STEP,
                                                                          *overrides)[1:]], env, work)
    extra_import_s, heavy = _imports_beyond(traced.stderr, base_log)
    met = ours_s <= import_s + slack_s
    return [Row(
        comparison=FIXED_COST, case="python train.py, default job, 1 train/val/test batch", unit="s outside fit",
        ours=ours_s, baseline=import_s, ratio=ours_s / import_s, ratio_kind="overhead",
        goal=f"<= import + {slack_s:g} s", met=met,
        notes=(f"baseline: python -c 'import torch, lightning'; the run imports {extra_import_s:.2f} s more "
               f"(self time of modules beyond torch + lightning); unneeded packages loaded: "
               f"{', '.join(heavy) or 'none'}; fit {median(fits):.2f} s"),
        extra={"ours_s": times["ours"], "baseline_s": times["import"], "fit_seconds": fits,
               "extra_import_seconds": extra_import_s, "unneeded_packages": heavy},
    )]


# ------------------------------------------------------------------------------------ 8, 9 sweeps
GPU_GRID = ("model=logreg,mlp,cnn,rnn", "seed=1,2,3,4")  # 16 small image jobs
CPU_GRID = ("model=logreg,mlp", "seed=1,2")  # 4 jobs: what a 2-core machine can time
LAUNCHER_GRID = ("model=logreg,mlp", "seed=1,2,3,4")  # 8 jobs, the same through every launcher (comparison 9)
# hydra/launcher=slurm on the cluster's default partition (or ZOO_SLURM_PARTITION), one CPU per job, polled every
# second; the time limit only guards against a runaway job.
SLURM = ("hydra/launcher=slurm", "hydra.launcher.poll_s=1", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.timeout_min=30")
# A launcher's log line for a job whose result reached the sweep (hydra_plugins/zoo_hydra/slurm.py), with its logging time stamp.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "TIMEOUT"}  # SLURM job states after which a job's record holds its end
RESULT_LINE = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+)\].*SLURM job (\d+_\d+) \S+: COMPLETED\s*$", re.M)


def grid_size(grid: tuple[str, ...]) -> int:
    """Jobs of a Hydra grid such as ``("model=logreg,mlp", "seed=1,2")`` (4)."""
    n = 1
    for axis in grid:
        n *= len(axis.split("=", 1)[1].split(","))
    return n


def _mnist_ready(ctx: Context) -> str | None:
    """Why no sweep can run (no MNIST), else None, with the archives decompressed before anything is timed.

    A fresh data folder is decompressed by the first job that reads it: that job would pay for it, and parallel
    jobs would write the same files at once.
    """
    if not (ctx.data_dir / "MNIST" / "raw").is_dir():
        return f"no MNIST in {ctx.data_dir}"
    from datamodules.mnist import MNISTDataModule

    MNISTDataModule(data_dir=ctx.data_dir, download=False).prepare_data()
    return None


def _sweep_side(ctx: Context, name: str, grid: tuple[str, ...], job: list[str], launcher: tuple[str, ...],
                runs: dict[str, dict]) -> Side:
    """One side of a sweep comparison: runs ``python train.py -m <launcher> <grid> <job>`` in a fresh folder.

    Each call returns the command's wall seconds (imports and launcher included), checks that every job wrote
    ``metrics.json``, and keeps the command's start and end (epoch seconds), output and sweep folder in
    ``runs[name]`` (the last call's).
    """
    env, work = _env(ctx), ctx.work_dir / "sweeps"
    work.mkdir(parents=True, exist_ok=True)

    def run() -> float:
        log_dir = work / f"{name}-{len(list(work.glob(name + '-*')))}"
        command = [sys.executable, str(ROOT / "train.py"), "-m", *launcher, *grid, *job,
                   f"trainer.accelerator={ctx.accelerator}", "data.download=false", f"paths.data_dir={ctx.data_dir}",
                   f"paths.log_dir={log_dir}"]
        start = time.time()
        seconds, proc = _run(command, env, work)
        done = list(log_dir.glob("multiruns/*/*/metrics.json"))
        if len(done) != grid_size(grid):
            raise RuntimeError(f"{len(done)} of {grid_size(grid)} sweep jobs wrote metrics.json in {log_dir}")
        runs[name] = {"start": start, "end": start + seconds, "output": proc.stdout + proc.stderr,
                      "sweep_dir": str(done[0].parents[1])}
        return seconds

    return run


def _job_overrides(limit_batches: int | None, overrides: tuple[str, ...]) -> list[str]:
    """One epoch per job (``limit_batches`` training batches and 2 validation/test batches; None: all)."""
    job = ["trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]
    if limit_batches is not None:
        job += [f"trainer.limit_train_batches={limit_batches}", "trainer.limit_val_batches=2",
                "trainer.limit_test_batches=2"]
    return [*job, *overrides]


def _case(grid: tuple[str, ...], limit_batches: int | None) -> str:
    return f"{grid_size(grid)}-job grid ({' '.join(grid)}), 1 epoch of {limit_batches or 'all'} batches each"


def sweep_throughput(ctx: Context, grid: tuple[str, ...] | None = None, n_jobs: int | None = None,
                     limit_batches: int | None = 50, repeats: int | None = None,
                     overrides: tuple[str, ...] = ()) -> list[Row]:
    """Jobs per hour of a grid run by ``hydra/launcher=joblib`` (``n_jobs`` processes) vs the basic launcher.

    Both sides run the same ``python train.py -m <grid>`` command (fresh interpreter, imports included) with
    ``limit_batches`` training batches per job (None: full epochs); the sides alternate. Defaults: on a GPU
    the 16-job grid :data:`GPU_GRID` with 8 parallel jobs, on a CPU :data:`CPU_GRID` with 2.
    """
    grid = grid or (GPU_GRID if ctx.cuda else CPU_GRID)
    n_jobs = n_jobs or (8 if ctx.cuda else 2)
    if reason := _mnist_ready(ctx):
        return [skipped(SWEEP, reason)]
    job, runs = _job_overrides(limit_batches, overrides), {}
    times = interleave({
        "joblib": _sweep_side(ctx, "joblib", grid, job, ("hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"),
                              runs),
        "sequential": _sweep_side(ctx, "sequential", grid, job, (), runs),
    }, repeats or ctx.repeats, 0)
    n_grid = grid_size(grid)
    par_s, seq_s = median(times["joblib"]), median(times["sequential"])
    par_rate, seq_rate = 3600 * n_grid / par_s, 3600 * n_grid / seq_s
    goal = 3.0 if ctx.cuda else None
    return [Row(
        comparison=SWEEP, case=f"{_case(grid, limit_batches)}, joblib n_jobs={n_jobs}",
        unit="jobs/hour", ours=par_rate, baseline=seq_rate, ratio=par_rate / seq_rate,
        goal=f">= {goal:g}x" if goal else ">= 3x on a GPU (not judged on CPU)",
        met=(par_rate / seq_rate >= goal) if goal else None,
        notes=f"ours: hydra/launcher=joblib; baseline: the basic launcher (one job after the other); "
              f"{os.cpu_count()} CPU cores",
        extra={"joblib_s": times["joblib"], "sequential_s": times["sequential"], "jobs": n_grid},
    )]


# ------------------------------------------------------------------------------------ 9 sweep launchers
def slurm_unavailable() -> str | None:
    """Why no SLURM cluster can take jobs from here (``sinfo`` missing or not answering), else None."""
    if shutil.which("sinfo") is None:
        return "no SLURM here (sinfo is not on PATH)"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P %a %D %t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if done.returncode != 0 or not done.stdout.strip():
        said = (done.stderr.strip().splitlines() or ["no partitions listed"])[-1]
        return f"sinfo does not answer (exit {done.returncode}: {said})"
    return None


def _load() -> str:
    """The load averages as ``uptime`` prints them (1, 5, 15 minutes)."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _local_epoch(stamp: str) -> float:
    """Epoch seconds of a local time stamp as SLURM and Python's logging print it (``2026-12-04T19:32:53``)."""
    return datetime.fromisoformat(stamp.replace(",", ".")).timestamp()


def _scontrol_records(array_ids: set[str]) -> str:
    """The arrays' tasks as ``JobID|Submit|Start|End|State`` lines from ``scontrol show job`` (no accounting needed;
    slurmctld keeps a finished job ``MinJobAge`` seconds, 300 by default)."""
    lines = []
    for array in sorted(array_ids):
        done = subprocess.run(["scontrol", "-o", "show", "job", array], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"neither sacct nor `scontrol show job {array}` knows the sweep's jobs: "
                               f"{done.stderr.strip()[-300:]}")
        for line in done.stdout.splitlines():
            f = dict(re.findall(r"(\w+)=(\S*)", line))
            lines.append("|".join([f"{f.get('ArrayJobId')}_{f.get('ArrayTaskId')}", f.get("SubmitTime", ""),
                                   f.get("StartTime", ""), f.get("EndTime", ""), f.get("JobState", "")]))
    return "\n".join(lines)


def slurm_records(array_ids: set[str], wanted: set[str], wait_s: float = 20.0) -> tuple[str, str]:
    """``(records, source)``: the arrays' tasks as ``JobID|Submit|Start|End|State`` lines once every ``wanted``
    task has ended, from ``sacct -n -P -X`` (source ``sacct``), or on a cluster without accounting from
    ``scontrol show job`` (source ``scontrol``).

    A job's record reaches sacct 1-3 s after it ends, so this asks again (once a second) for up to ``wait_s``.
    """
    command = ["sacct", "-n", "-P", "-X", "-j", ",".join(sorted(array_ids)), "-o", "JobID,Submit,Start,End,State"]
    deadline = time.monotonic() + wait_s
    while True:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            records, source = done.stdout, "sacct"
        else:  # no accounting
            records, source = _scontrol_records(array_ids), "scontrol"
        ended = {line.split("|")[0] for line in records.splitlines()
                 if line.count("|") == 4 and line.split("|")[4].split(" ")[0] in ENDED}
        if wanted <= ended or time.monotonic() > deadline:
            return records, source
        time.sleep(1)


def slurm_overheads(output: str, records: str, start: float, end: float) -> dict:
    """Per-job times of a SLURM sweep from the launcher's log and SLURM's records (:func:`slurm_records`), in s.

    - ``queue_s``: submission -> start (``Submit`` to ``Start``: scheduling and waiting for a free CPU);
    - ``handback_s``: end -> result (``End`` to the launcher's ``COMPLETED`` log line: the job's result
      reached the sweep; it polls squeue every ``poll_s``);
    - ``run_s``: start -> end (the job itself: interpreter, imports, training, test);
    - ``startup_s``: the sweep command's start -> the first submission (Hydra, planning, ``sbatch --test-only``);
    - ``tail_s``: the last result -> the sweep command's end;
    - ``most_at_once``: the most of these jobs running at the same time (other jobs on the cluster take slots).

    SLURM's times have 1-second resolution; a job with no ``COMPLETED`` line gets the command's end.
    """
    results = {job: _local_epoch(stamp) for stamp, job in RESULT_LINE.findall(output)}
    jobs = {}
    for line in records.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5 or not re.fullmatch(r"\d+_\d+", parts[0]):  # not "163_[4-7]" (pending tasks)
            continue
        job, submit, begin, finish, state = parts
        if state.split()[0] != "COMPLETED":
            raise RuntimeError(f"SLURM job {job} ended {state}: not a completed sweep")
        jobs[job] = [_local_epoch(submit), _local_epoch(begin), _local_epoch(finish), results.get(job, end)]
    jobs = dict(sorted(jobs.items(), key=lambda kv: [int(n) for n in kv[0].split("_")]))  # scontrol: last first
    if not jobs:
        raise RuntimeError(f"SLURM listed no job of the sweep: {records.strip()[-300:]!r}")
    submits, begins, finishes, results_at = zip(*jobs.values(), strict=True)
    return {
        "jobs": list(jobs),
        "queue_s": [b - s for s, b, _, _ in jobs.values()],
        "handback_s": [r - f for _, _, f, r in jobs.values()],
        "run_s": [f - b for _, b, f, _ in jobs.values()],
        "startup_s": min(submits) - start,
        "tail_s": end - max(results_at),
        "most_at_once": max(sum(b <= t < f for _, b, f, _ in jobs.values()) for t in begins),
        "wall_s": end - start,
        "result_lines": len(results),
    }


def sweep_launchers(ctx: Context, grid: tuple[str, ...] = LAUNCHER_GRID, n_jobs: int = 2,
                    limit_batches: int | None = 50, repeats: int | None = 1,
                    launchers: tuple[str, ...] = ("slurm", "basic", "joblib"),
                    overrides: tuple[str, ...] = ()) -> list[Row]:
    """The same grid through the local SLURM cluster, the basic launcher and joblib: jobs per hour of each.

    Every side is one whole ``python train.py -m`` command (see :func:`sweep_throughput`), in this order, and its
    rate is compared with the basic launcher's. For SLURM also the per-job overhead (:func:`slurm_overheads`):
    median and max of submission -> start and end -> result, and the command's wall time. Without a cluster that
    answers ``sinfo`` the SLURM side is a skipped row and the others still run.
    """
    if reason := _mnist_ready(ctx):
        return [skipped(LAUNCHERS, reason)]
    load_before = _load()
    sides = {"slurm": SLURM, "basic": (), "joblib": ("hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}")}
    cases = {"slurm": "slurm (local cluster, cpus_per_task=1, poll_s=1)",
             "basic": "basic launcher (one job after the other, one process)", "joblib": f"joblib n_jobs={n_jobs}"}
    chosen = [name for name in sides if name in launchers]
    rows: list[Row] = []
    if "slurm" in chosen and (reason := slurm_unavailable()):
        chosen.remove("slurm")
        rows.append(skipped(LAUNCHERS, reason, case=cases["slurm"]))
    job, runs = _job_overrides(limit_batches, overrides), {}
    times = interleave({name: _sweep_side(ctx, name, grid, job, sides[name], runs) for name in chosen},
                       repeats or ctx.repeats, 0)
    n_grid = grid_size(grid)
    notes = {name: f"wall {median(times[name]):.1f} s" for name in chosen}
    overheads = []
    if "slurm" in chosen:
        out = runs["slurm"]["output"]
        jobs = {jid for _, jid in RESULT_LINE.findall(out)}
        try:
            if not jobs:
                raise RuntimeError(f"no `SLURM job <id> <name>: COMPLETED` line in the sweep's output: {out[-500:]}")
            arrays = {jid.split("_")[0] for jid in jobs}
            start, end = runs["slurm"]["start"], runs["slurm"]["end"]
            records, source = slurm_records(arrays, jobs)
            per_job = {**slurm_overheads(out, records, start, end), "source": source}
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            overheads.append(skipped(LAUNCHERS, f"no per-job times: {err}", case="slurm per-job overhead"))
        else:
            run_s = per_job["run_s"]
            notes["slurm"] += (f" (command start -> first submission {per_job['startup_s']:.1f} s, last result -> "
                               f"command end {per_job['tail_s']:.1f} s; job run, start -> end: median "
                               f"{median(run_s):.0f} s, max {max(run_s):.0f} s; at most {per_job['most_at_once']} "
                               f"running at once; array {','.join(sorted(arrays))})")
            for key, what in (("queue_s", "submission -> start (SLURM's Submit to Start)"),
                              ("handback_s", "end -> result (SLURM's End to the launcher's COMPLETED line)")):
                overheads.append(Row(
                    comparison=LAUNCHERS, case=f"slurm per-job overhead: {what}", unit="s (median)",
                    ours=median(per_job[key]), goal="reported",
                    notes=f"max {max(per_job[key]):.1f} s over {len(run_s)} jobs; times from {source} "
                          f"(1-s resolution)",
                    extra=per_job))
    load = f"load average (1/5/15 min) {load_before} at the start, {_load()} at the end, {os.cpu_count()} CPU cores"
    base = 3600 * n_grid / median(times["basic"]) if "basic" in chosen else None
    for name in chosen:
        rate = 3600 * n_grid / median(times[name])
        rows.append(Row(
            comparison=LAUNCHERS, case=f"{_case(grid, limit_batches)}: {cases[name]}", unit="jobs/hour", ours=rate,
            baseline=base, ratio=rate / base if base else None, goal="reported (baseline: the basic launcher)",
            notes=f"{notes[name]}; {load}",
            extra={"seconds": times[name], "jobs": n_grid, "sweep_dir": runs[name]["sweep_dir"]}))
    return rows + overheads
