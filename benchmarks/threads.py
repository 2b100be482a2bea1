"""Which ``threads`` default is fastest here: fit seconds of short runs at each thread count, alternating.

    python benchmarks/threads.py [--threads 1,2] [--repeats 3] [--data-dir DIR]

Each run is a fresh ``python train.py ... threads=N`` (mlp: 200 batches, cnn: 40 batches, gcn_cora: 50 epochs);
the thread counts alternate within every repeat, so a change in the machine's load hits each alike. Prints one
line per run (fit seconds and the 1-minute load average) and the medians; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/threads.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.harness import Context  # noqa: E402
from benchmarks.process import _env, _run, _train_command  # noqa: E402

JOBS: dict[str, list[str]] = {
    "mlp, 200 batches": ["model=mlp", "trainer.max_epochs=1", "trainer.limit_train_batches=200"],
    "cnn, 40 batches": ["model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=40"],
    "gcn_cora, 50 epochs": ["experiment=gcn_cora", "trainer.max_epochs=50"],
}


def main(argv: list[str] | None = None) -> dict[tuple[str, int], list[float]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default="1,2", help="thread counts to compare")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    args = p.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",")]
    fits: dict[tuple[str, int], list[float]] = {(job, t): [] for job in JOBS for t in counts}
    with tempfile.TemporaryDirectory(prefix="zoo-threads-") as work:
        ctx = Context(device=torch.device("cpu"), data_dir=args.data_dir.expanduser().resolve(), work_dir=Path(work))
        env = _env(ctx)
        env.pop("OMP_NUM_THREADS", None)  # the `threads` key alone decides
        for r in range(args.repeats):
            for t in counts if r % 2 == 0 else reversed(counts):
                for job, overrides in JOBS.items():
                    run_dir = Path(work) / f"{r}_{t}_{len(fits[job, t])}_{job.split(',')[0]}"
                    command = _train_command(ctx, run_dir, *overrides, "trainer.limit_val_batches=2", "test=false",
                                             f"threads={t}")
                    _run(command, env, Path(work))
                    fit = json.loads((run_dir / "metrics.json").read_text())["fit_seconds"]
                    fits[job, t].append(fit)
                    print(f"threads={t} {job}: fit {fit:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    print("\n| job | " + " | ".join(f"threads={t}" for t in counts) + " |\n|---|" + "---|" * len(counts))
    for job in JOBS:
        print(f"| {job} | " + " | ".join(f"{statistics.median(fits[job, t]):.2f} s" for t in counts) + " |")
    return fits


if __name__ == "__main__":
    main()
