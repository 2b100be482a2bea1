"""Run ``python train.py ...`` in a subprocess, as a user would, on tiny data and tiny budgets."""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Smallest real run: one short epoch, one validation/test batch, quiet.
TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar.refresh_rate=0",
    "data.val_size=100",
    "data.download=false",
]


def run_train(*overrides: str, data_dir: Path, log_dir: Path, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """``python train.py <overrides> paths.data_dir=<data_dir> paths.log_dir=<log_dir>``; output captured."""
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"paths.data_dir={data_dir}",
               f"paths.log_dir={log_dir}"]
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(command, cwd=log_dir.parent, env=full_env, capture_output=True, text=True,
                          timeout=timeout)


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def wait_for_marker(marker: Path, proc: subprocess.Popen, seconds: float = 240) -> str:
    """Wait until ``proc`` (a run paused by a fault callback) writes ``marker``; its text. Fails with the output
    if ``proc`` ends first or ``seconds`` pass."""
    import pytest

    deadline = time.monotonic() + seconds
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not marker.exists():
        proc.kill()
        pytest.fail(proc.communicate(timeout=60)[0][-3000:])
    time.sleep(0.3)  # written whole
    return marker.read_text()
