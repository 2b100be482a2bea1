"""Run every speed comparison of the zoo in one process; print a table and write the results.

    python benchmarks/run.py [--device cpu|cuda] [--quick] [--data-dir DIR] [--only 1,2,...] [--name NAME]

Writes ``benchmarks/results/<device>[-quick].json`` and ``.md`` (date, hardware, versions, table), or ``<NAME>.*``.
A comparison whose data is missing is recorded as ``skipped: <reason>``; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.harness import Context, Row, environment, table, write_results  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Sizes per mode: `quick` keeps comparisons 1-5 under 2 minutes on an idle 2-core CPU (7 and 8 time whole commands).
SIZES: dict[str, dict[str, dict]] = {
    "full": {
        "pipeline": {},
        "overhead": {},
        "speed_run": {},
        "cora": {"epochs": 200},
        "delineation": {"sizes": (208, 2_000, 10_000, 50_000), "epochs": 20},
        "seed_experiment": {"rounds": 1, "epochs": 10_000},  # one round at the configured size
        "fixed_cost": {},
        "sweeps": {"limit_batches": 200, "repeats": 2},
        "sweep_launchers": {"limit_batches": 50, "repeats": 1},
    },
    "quick": {
        "pipeline": {"max_batches": 100},
        "overhead": {"limit_batches": 20},
        "speed_run": {"limit_batches": 5},
        "cora": {"epochs": 50},
        "delineation": {"sizes": (208, 2_000, 50_000), "epochs": 3},
        "seed_experiment": {"rounds": 1, "epochs": 1_000},
        "fixed_cost": {},
        "sweeps": {"limit_batches": 10, "repeats": 1},
        "sweep_launchers": {"limit_batches": 10, "repeats": 1},
    },
}


def comparisons() -> dict[str, tuple[str, Callable[..., list[Row]]]]:
    """Comparison number -> (sizes key, function). Imported lazily so a broken one cannot stop the rest."""
    from benchmarks import graph, image, process

    return {
        "1": ("pipeline", image.image_pipeline),
        "2": ("overhead", image.training_overhead),
        "3": ("speed_run", image.mnist_speed_run),
        "4": ("cora", graph.cora_gcn),
        "5": ("delineation", graph.delineation_gcn),
        "6": ("seed_experiment", graph.seed_experiment),
        "7": ("fixed_cost", process.fixed_cost),
        "8": ("sweeps", process.sweep_throughput),
        "9": ("sweep_launchers", process.sweep_launchers),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes: 1-5 in under 2 minutes on an idle CPU")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")),
                   help="folder with MNIST/raw, Cora/raw, nyc_zip/ (default: $ZOO_DATA_DIR or ./data)")
    p.add_argument("--only", default="1,2,3,4,5,6,7,8,9", help="comma-separated comparison numbers")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per side (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for both sides (default on cpu: 1, see benchmarks/README.md; "
                        "0 keeps PyTorch's choice, one per core)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    p.add_argument("--name", default=None,
                   help="results file name without suffix (default: <device>[-quick]; e.g. cpu_sweeps for --only 9)")
    p.add_argument("--note", default="", help="a line recorded with the environment (e.g. what else ran meanwhile)")
    return p.parse_args(argv)


def earlier_rows(path: Path, numbers: list[str], env: dict) -> list[Row]:
    """Rows of comparisons not rerun now, from an earlier results file, so that ``--only`` updates it in place.

    Each row keeps when and at which commit it was measured (``extra["measured"]``); ``env["kept_rows"]`` lists them.
    """
    if not path.is_file():
        return []
    saved = json.loads(path.read_text())
    old = saved.get("environment", {})
    rows = [Row(**r) for r in saved["rows"] if r["comparison"].split()[0] not in numbers]
    for r in rows:
        r.extra.setdefault("measured", f"{old.get('date', '?')} at commit {old.get('git_commit', '?')}")
    if rows:
        env["kept_rows"] = "; ".join(sorted({f"{r.comparison.split()[0]}: {r.extra['measured']}" for r in rows}))
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to PyTorch. Run with --device cpu.")
    device = torch.device(args.device)
    # On a shared CPU, intra-op threads that wait for each other at every operation cost 50-300x when
    # another process holds a core; one thread per process measures the work itself (both sides alike).
    threads = args.threads if args.threads is not None else (1 if args.device == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    mode = "quick" if args.quick else "full"
    repeats = args.repeats or (3 if args.quick else 5)
    rows: list[Row] = []
    start = time.perf_counter()
    name = args.name or args.device + ("-quick" if args.quick else "")
    env = environment(device)
    env["mode"] = mode
    if args.note:
        env["note"] = args.note

    numbers = [n.strip() for n in args.only.split(",")]
    kept = earlier_rows(args.out / f"{name}.json", numbers, env)

    def save() -> tuple[Path, Path]:
        env["total_seconds"] = round(time.perf_counter() - start, 1)
        for r in rows:
            r.extra.setdefault("measured", f"{env['date']} at commit {env['git_commit']}, load average "
                                           f"{env['load_average_1min']}")
        order = {n: i for i, n in enumerate(comparisons())}
        merged = sorted([*kept, *rows], key=lambda r: order.get(r.comparison.split()[0], len(order)))
        return write_results(merged, env, args.out, name)

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
        ctx = Context(device=device, data_dir=args.data_dir.expanduser().resolve(), work_dir=Path(work),
                      quick=args.quick, repeats=repeats, warmup=1)
        registry = comparisons()
        for number in numbers:
            key, fn = registry[number]
            t0 = time.perf_counter()
            try:
                new = fn(ctx, **SIZES[mode][key])
            except Exception as err:  # one broken comparison must not lose the others' numbers
                traceback.print_exc()
                new = [Row(comparison=number, case="-", status=f"failed: {type(err).__name__}: {err}")]
            rows += new
            print(f"\n[{number}] {key}: {time.perf_counter() - t0:.1f} s\n{table(new)}\n", flush=True)
            save()  # after every comparison: an interrupted run keeps what it measured
    json_path, md_path = save()
    print(table(rows))
    print(f"\nTotal {env['total_seconds']} s. Written {json_path} and {md_path}.")
    return rows


if __name__ == "__main__":
    main()
