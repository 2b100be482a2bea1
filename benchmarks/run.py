"""Run every speed comparison of the zoo in one process; print a table and write the results.

    python benchmarks/run.py [--device cpu|cuda] [--quick] [--data-dir DIR] [--only 1,2,...]

Writes ``benchmarks/results/<device>[-quick].json`` and ``.md`` (date, hardware, versions, table).
A comparison whose data is missing is recorded as ``skipped: <reason>``; the others still run.
"""

from __future__ import annotations

import argparse
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

# Sizes per mode: `quick` keeps the whole run under 2 minutes on a 2-core CPU.
SIZES: dict[str, dict[str, dict]] = {
    "full": {
        "pipeline": {},
        "overhead": {},
        "speed_run": {},
        "cora": {"epochs": 200},
        "delineation": {"sizes": (208, 2_000, 10_000, 50_000), "epochs": 20},
        "seed_experiment": {"rounds": 1, "epochs": 10_000},  # one round at the configured size
    },
    "quick": {
        "pipeline": {"max_batches": 100},
        "overhead": {"limit_batches": 20},
        "speed_run": {"limit_batches": 5},
        "cora": {"epochs": 50},
        "delineation": {"sizes": (208, 2_000, 50_000), "epochs": 3},
        "seed_experiment": {"rounds": 1, "epochs": 1_000},
    },
}


def comparisons() -> dict[str, tuple[str, Callable[..., list[Row]]]]:
    """Comparison number -> (sizes key, function). Imported lazily so a broken one cannot stop the rest."""
    from benchmarks import graph, image

    return {
        "1": ("pipeline", image.image_pipeline),
        "2": ("overhead", image.training_overhead),
        "3": ("speed_run", image.mnist_speed_run),
        "4": ("cora", graph.cora_gcn),
        "5": ("delineation", graph.delineation_gcn),
        "6": ("seed_experiment", graph.seed_experiment),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quick", action="store_true", help="small sizes: under 2 minutes on a CPU")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")),
                   help="folder with MNIST/raw, Cora/raw, nyc_zip/ (default: $ZOO_DATA_DIR or ./data)")
    p.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated comparison numbers")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per side (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for both sides (default on cpu: 1, see benchmarks/README.md; "
                        "0 keeps PyTorch's choice, one per core)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    return p.parse_args(argv)


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
    name = args.device + ("-quick" if args.quick else "")
    env = environment(device)
    env["mode"] = mode

    def save() -> tuple[Path, Path]:
        env["total_seconds"] = round(time.perf_counter() - start, 1)
        return write_results(rows, env, args.out, name)

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as work:
        ctx = Context(device=device, data_dir=args.data_dir.expanduser().resolve(), work_dir=Path(work),
                      quick=args.quick, repeats=repeats, warmup=1)
        registry = comparisons()
        for number in args.only.split(","):
            key, fn = registry[number.strip()]
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
