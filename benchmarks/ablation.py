"""Where the training overhead goes: the measurements behind benchmarks/README.md's "Where the time goes".

    python benchmarks/ablation.py variants [--model mlp]     # the zoo's epoch without each piece, vs the raw loop
    python benchmarks/ablation.py compile [--models mlp,cnn] # raw loop: eager vs torch.compile
    python benchmarks/ablation.py cprofile [--model mlp]     # one zoo epoch under cProfile, top functions
        [--sort tottime] [--only 'callbacks|zoo/'] [--callers dlopen]
    python benchmarks/ablation.py metrics                    # per-step cost of the epoch-metric updates

Same data, sizes and timing rules as ``benchmarks/run.py`` (comparison 2): one MNIST epoch, batch 128, sides in
alternating order after a warm-up, medians. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/ablation.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.harness import Context, Row, interleave, median  # noqa: E402
from benchmarks.image import OverheadSetup, overhead_setup, zoo_epoch  # noqa: E402

# Variant name -> overrides that take one piece out of the default stack.
VARIANTS: dict[str, list[str]] = {
    "default stack": [],
    "no callbacks": ["callbacks=none"],
    "no callbacks, no logger": ["callbacks=none", "logger=none"],
    "no progress bar": ["~callbacks.progress_bar"],
    "no checkpointing": ["~callbacks.model_checkpoint", "~callbacks.last_checkpoint"],
    "no NaN check": ["~callbacks.finite_loss"],
}


def variants(ctx: Context, setup: OverheadSetup) -> list[tuple[str, float, float]]:
    """(variant, median seconds per epoch, ratio to the raw loop) for each of :data:`VARIANTS`."""
    sides = {name: zoo_epoch(ctx, [*setup.overrides, *extra], ctx.work_dir / f"v{i}")
             for i, (name, extra) in enumerate(VARIANTS.items())}
    times = interleave({**sides, "raw PyTorch loop": setup.raw(ctx)}, ctx.repeats, ctx.warmup)
    base = median(times["raw PyTorch loop"])
    return [(name, median(t), median(t) / base) for name, t in times.items()]


def compiled(ctx: Context, setup: OverheadSetup) -> list[tuple[str, float, float]]:
    """(side, median seconds per epoch, ratio to eager) for the raw loop, eager and with ``torch.compile``."""
    eager, compiled_ = f"{setup.model} raw loop, eager", f"{setup.model} raw loop, torch.compile"
    times = interleave({eager: setup.raw(ctx), compiled_: setup.raw(ctx, compile=True)}, ctx.repeats,
                       warmup=1)  # the warm-up round compiles
    base = median(times[eager])
    return [(name, median(t), median(t) / base) for name, t in times.items()]


def profile(ctx: Context, setup: OverheadSetup, top: int, sort: str = "cumulative", only: str | None = None,
            callers: str | None = None) -> str:
    """cProfile of one zoo run of one epoch (after an unprofiled one): the ``top`` functions by ``sort``, only
    those matching the regex ``only``; with ``callers`` (a regex), who calls the functions it matches."""
    epoch = zoo_epoch(ctx, setup.overrides, ctx.work_dir / "profiled")
    epoch()  # warm-up: imports, first allocations
    profiler = cProfile.Profile()
    seconds = profiler.runcall(epoch)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(sort)
    stats.print_stats(*([only] if only else []), top)
    if callers:
        stats.print_callers(callers)
    return f"one epoch: {seconds:.3f} s (profiled)\n" + out.getvalue().replace(sys.prefix + "/", "")


def metric_updates(batch_size: int = 128, num_classes: int = 10, n: int = 3000) -> list[tuple[str, float, float]]:
    """(update, µs per step, ratio to the raw sums) for the epoch-metric updates of one training step."""
    import timeit

    import torch.nn.functional as F
    from torchmetrics import MeanMetric
    from torchmetrics.classification import MulticlassAccuracy

    from zoo.tasks.epoch_metrics import LossAccuracy

    logits, y = torch.randn(batch_size, num_classes), torch.randint(0, num_classes, (batch_size,))
    losses = F.cross_entropy(logits, y, reduction="none")
    mean, acc = MeanMetric(nan_strategy="disable"), MulticlassAccuracy(num_classes, average="micro", validate_args=False)
    ours = LossAccuracy()
    sums = [torch.zeros(()), torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.long)]

    def raw() -> None:
        sums[0] += losses.sum()
        sums[1] += (logits.argmax(-1) == y).sum()
        sums[2] += y.numel()

    sides = {
        "MeanMetric + MulticlassAccuracy (before)": lambda: (mean.update(losses), acc.update(logits, y)),
        "LossAccuracy (now)": lambda: ours.update(losses, logits, y),
        "three raw in-place sums": raw,
    }
    times = {name: min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6 for name, fn in sides.items()}
    base = times["three raw in-place sums"]
    return [(name, t, t / base) for name, t in times.items()]


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("variants", "compile", "cprofile", "metrics"))
    p.add_argument("--model", "--models", dest="models", default=None, help="mlp (variants, cprofile); mlp,cnn (compile)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "data")))
    p.add_argument("--limit-batches", type=int, default=None, help="training batches per epoch (default: all 430)")
    p.add_argument("--val-size", type=int, default=5000, help="validation images held out of the training set")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--top", type=int, default=40, help="cprofile: functions to list")
    p.add_argument("--sort", default="cumulative", help="cprofile: pstats sort key (cumulative, tottime, ...)")
    p.add_argument("--only", default=None, help="cprofile: list only functions matching this regex (e.g. 'zoo/')")
    p.add_argument("--callers", default=None, help="cprofile: also print who calls functions matching this regex")
    args = p.parse_args(argv)
    models = (args.models or ("mlp,cnn" if args.what == "compile" else "mlp")).split(",")
    lines = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as run.py on CPU: see benchmarks/README.md
    try:
        # train() prints its summary tables: keep them off stdout, which gets only the result.
        with contextlib.redirect_stdout(sys.stderr), tempfile.TemporaryDirectory(prefix="zoo-ablation-") as work:
            ctx = Context(device=torch.device("cpu"), data_dir=args.data_dir.expanduser().resolve(), work_dir=Path(work),
                          repeats=args.repeats, warmup=1)
            if args.what == "metrics":
                lines += [f"| {name} | {us:.1f} µs | {r:.2f}x |" for name, us, r in metric_updates()]
                models = []
            for model in models:
                setup = overhead_setup(ctx, model, args.limit_batches, val_size=args.val_size)
                if isinstance(setup, Row):
                    raise SystemExit(setup.status)
                if args.what == "cprofile":
                    lines.append(profile(ctx, setup, args.top, args.sort, args.only, args.callers))
                else:
                    fn = variants if args.what == "variants" else compiled
                    lines += [f"| {name} | {s:.3f} s | {r:.2f}x |" for name, s, r in fn(ctx, setup)]
    finally:
        torch.set_num_threads(threads)
    unit = "per step" if args.what == "metrics" else "s/epoch"
    head = [] if args.what == "cprofile" else [f"| side | {unit} | ratio |", "|---|---|---|"]
    text = "\n".join(head + lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
