"""Comparisons 7-8, measured on whole ``python train.py`` commands in subprocesses, as a user runs them.

7: the fixed cost of a run: a command's wall time outside ``fit_seconds`` (imports, config composition, data
   loading, test, writing results), against the time of ``python -c "import torch, lightning"``.
8: sweep throughput: a grid of small image jobs through ``hydra/launcher=joblib`` (parallel processes) against
   the same grid one job after the other (Hydra's basic launcher), in jobs per hour.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Context, Row, interleave, median, skipped

ROOT = Path(__file__).resolve().parents[1]
FIXED_COST = "7 fixed cost per run"
SWEEP = "8 sweep throughput"

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


# ------------------------------------------------------------------------------------ 8 sweeps
GPU_GRID = ("model=logreg,mlp,cnn,rnn", "seed=1,2,3,4")  # 16 small image jobs
CPU_GRID = ("model=logreg,mlp", "seed=1,2")  # 4 jobs: what a 2-core machine can time


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
    if not (ctx.data_dir / "MNIST" / "raw").is_dir():
        return [skipped(SWEEP, f"no MNIST in {ctx.data_dir}")]
    env, work = _env(ctx), ctx.work_dir / "sweeps"
    work.mkdir(parents=True, exist_ok=True)
    n_grid = 1
    for axis in grid:
        n_grid *= len(axis.split("=", 1)[1].split(","))
    job = ["trainer.max_epochs=1", "callbacks.progress_bar.refresh_rate=0"]
    if limit_batches is not None:
        job += [f"trainer.limit_train_batches={limit_batches}", "trainer.limit_val_batches=2",
                "trainer.limit_test_batches=2"]
    count = {"n": 0}

    def side(*launcher: str) -> float:
        def run() -> float:
            count["n"] += 1
            log_dir = work / f"sweep{count['n']}"
            command = [sys.executable, str(ROOT / "train.py"), "-m", *launcher, *grid, *job, *overrides,
                       f"trainer.accelerator={ctx.accelerator}", "data.download=false",
                       f"paths.data_dir={ctx.data_dir}", f"paths.log_dir={log_dir}"]
            seconds, _ = _run(command, env, work)
            done = list(log_dir.glob("multiruns/*/*/metrics.json"))
            if len(done) != n_grid:
                raise RuntimeError(f"{len(done)} of {n_grid} sweep jobs wrote metrics.json in {log_dir}")
            return seconds

        return run

    times = interleave({"joblib": side("hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"),
                        "sequential": side()}, repeats or ctx.repeats, 0)
    par_s, seq_s = median(times["joblib"]), median(times["sequential"])
    par_rate, seq_rate = 3600 * n_grid / par_s, 3600 * n_grid / seq_s
    goal = 3.0 if ctx.cuda else None
    return [Row(
        comparison=SWEEP, case=(f"{n_grid}-job grid ({' '.join(grid)}), 1 epoch of "
                                f"{limit_batches or 'all'} batches each, joblib n_jobs={n_jobs}"),
        unit="jobs/hour", ours=par_rate, baseline=seq_rate, ratio=par_rate / seq_rate,
        goal=f">= {goal:g}x" if goal else ">= 3x on a GPU (not judged on CPU)",
        met=(par_rate / seq_rate >= goal) if goal else None,
        notes=f"ours: hydra/launcher=joblib; baseline: the basic launcher (one job after the other); "
              f"{os.cpu_count()} CPU cores",
        extra={"joblib_s": times["joblib"], "sequential_s": times["sequential"], "jobs": n_grid},
    )]
