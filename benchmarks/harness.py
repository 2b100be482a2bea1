"""Timing, memory and reporting tools shared by every comparison of ``benchmarks/run.py``.

Both sides of a comparison run in one process, on the same data, after a warm-up, in alternating
order (A B, B A, A B, ...), so that the machine's noise hits both alike; rows report medians and ratios.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch

from zoo.run.runner import compose_config as compose_cfg  # noqa: F401  (re-exported for the comparisons)

Side = Callable[[], float]  # runs one measured unit (an epoch) and returns its seconds


@dataclass
class Context:
    """What every comparison needs to know about this run.

    Args:
        device: Where models and data live.
        data_dir: Folder holding ``MNIST/raw``, ``Cora/raw``, ``nyc_zip/`` (what is missing is skipped).
        work_dir: Scratch folder for run directories, checkpoints and writable dataset copies.
        quick: Smaller sizes so that the whole harness finishes in under 2 minutes on a CPU.
        repeats: Timed rounds per side (the median is reported).
        warmup: Untimed rounds per side before the timed ones.
    """

    device: torch.device
    data_dir: Path
    work_dir: Path
    quick: bool = False
    repeats: int = 5
    warmup: int = 1

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def accelerator(self) -> str:
        return "gpu" if self.cuda else "cpu"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


@dataclass
class Row:
    """One line of the results table.

    ``ratio`` is ``baseline / ours`` for speed-ups (higher is better) and ``ours / baseline`` for
    overheads (lower is better); ``ratio_kind`` says which. ``status`` is ``ok`` or ``skipped: <why>``.
    """

    comparison: str
    case: str
    unit: str = ""
    ours: float | None = None
    baseline: float | None = None
    ratio: float | None = None
    ratio_kind: str = "speed-up"
    goal: str = ""
    met: bool | None = None
    status: str = "ok"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def skipped(comparison: str, reason: str, case: str = "-") -> Row:
    return Row(comparison=comparison, case=case, status=f"skipped: {reason}")


def interleave(sides: dict[str, Side], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Run every side ``warmup`` times untimed, then ``repeats`` timed rounds in alternating order.

    Returns:
        The seconds of each timed round, per side.
    """
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(sides[name]())
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(ctx: Context, fn: Callable[[], Any]) -> float:
    """Seconds ``fn`` takes, with the device synchronised before and after."""
    ctx.sync()
    start = time.perf_counter()
    fn()
    ctx.sync()
    return time.perf_counter() - start


class EpochTimer(L.Callback):
    """Seconds of each training epoch as Lightning runs it: batches, validation, checkpoint writing.

    Starts at ``on_train_epoch_start`` and stops at ``on_train_epoch_end`` (which Lightning calls
    after the epoch's validation loop and the checkpoint saved at its end). ``fit_seconds`` spans
    ``on_train_start`` to ``on_train_end``: every epoch, without setup and the sanity check.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.fit_seconds = 0.0
        self._start = self._fit_start = 0.0

    @staticmethod
    def _sync(pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(pl_module)
        self._fit_start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(pl_module)
        self.fit_seconds = time.perf_counter() - self._fit_start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(pl_module)
        self.seconds.append(time.perf_counter() - self._start)


# --------------------------------------------------------------------------------------- memory
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def available_memory_bytes(device: torch.device) -> int:
    """Memory a new allocation can still get: free GPU memory, or the OS's ``MemAvailable``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30  # unknown platform: assume a small machine


def exact_rss() -> None:
    """Make glibc return every freed block above 64 KiB to the OS, so the resident set size tracks live tensors.

    By default glibc raises its mmap threshold after large frees and keeps later large tensors in its heap,
    where freeing them does not lower the RSS: a later peak would then hide inside memory already counted.
    """
    import ctypes

    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD (a fixed value: no adjustment)


class PeakMemory:
    """Peak memory used above the starting level while the ``with`` block runs.

    On CUDA this is ``torch.cuda.max_memory_allocated`` (exact); on the CPU, the resident set size
    is sampled every millisecond by a thread (coarse: small allocations may not show).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cpu":
            exact_rss()
        self.peak_bytes: int | None = None
        self._stop = threading.Event()
        self._base = 0
        self._max = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes()
            if rss is not None:
                self._max = max(self._max, rss)
            time.sleep(0.001)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            rss = _rss_bytes()
            if rss is None:
                return self
            self._base = self._max = rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        elif hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, _rss_bytes() or 0)
            self.peak_bytes = self._max - self._base


# --------------------------------------------------------------------------------------- configs
@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's informational log lines (GPU available, ...) without changing its work."""
    import logging

    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "zoo.run.runner")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# --------------------------------------------------------------------------------------- reporting
def environment(device: torch.device) -> dict[str, Any]:
    """Date, hardware and library versions recorded with the results."""
    import lightning
    import torch_geometric
    import torchmetrics
    import torchvision

    cpu = platform.processor() or platform.machine()
    with suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    env = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git_commit": commit,
        "device": str(device),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
        "memory_gib": round(available_memory_bytes(torch.device("cpu")) / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "torch_geometric": torch_geometric.__version__,
        "torchmetrics": torchmetrics.__version__,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or 0.01 <= abs(value) < 100_000:
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    head = ["comparison", "case", "ours", "baseline", "unit", "ratio", "goal", "met", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x {'faster' if r.ratio_kind == 'speed-up' else 'time'}"
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        notes = r.notes if r.status == "ok" else r.status + (f"; {r.notes}" if r.notes else "")
        cells = [r.comparison, r.case, _fmt(r.ours), _fmt(r.baseline), r.unit, ratio, r.goal, met, notes]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def write_results(rows: list[Row], env: dict[str, Any], out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` (every number) and ``<out_dir>/<name>.md`` (the table)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps({"environment": env, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    env_lines = "\n".join(f"- {k}: `{v}`" for k, v in env.items())
    md_path.write_text(
        f"# Benchmark results: {name}\n\n{env_lines}\n\n{table(rows)}\n\n"
        "Ratios compare both sides measured alternately in this one process (medians); absolute times on a "
        "shared CPU are only indicative. Speed-ups are baseline/ours (higher is better); `time` ratios are "
        "ours/baseline (lower is better).\n"
    )
    return json_path, md_path
