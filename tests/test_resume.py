"""Killed runs resume to the same result, checkpoints survive a kill mid-save, eval.py repeats a run's test."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_cfg
from tests.runs import ROOT
from zoo.callbacks.checkpoint import AtomicCheckpointIO
from zoo.run.runner import train

# Three short epochs of an MLP with dropout (so the global RNG matters), CPU, fixed seed (0 on purpose).
RUN = [
    "model=mlp", "data=mnist", "model.net.dropout=0.2", "seed=0", "trainer.accelerator=cpu",
    "trainer.max_epochs=3", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1", "data.val_size=100", "data.download=false", "logger=none",
    "trainer.enable_model_summary=false", "callbacks.progress_bar.refresh_rate=0",
]
# Pause at the second batch of the last epoch, after last.ckpt was written at the end of epoch 1.
PAUSE = ["+callbacks.pause._target_=tests.faults.PauseMidEpoch", "+callbacks.pause.epoch=2",
         "+callbacks.pause.batch=1"]


def _command(script: str, run_dir: Path, data_dir: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / script), *RUN, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}",
            *overrides]


def _start(script: str, run_dir: Path, data_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(_command(script, run_dir, data_dir, *overrides), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _metrics(run_dir: Path) -> dict[str, float]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("fit_seconds")
    return metrics


KILLS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir) -> dict[str, tuple[Path, int, str]]:
    """``train.py`` three times at once: uninterrupted, and killed mid-epoch 2 by SIGTERM and by SIGKILL.

    Returns ``{name: (run dir, exit code, output)}``.
    """
    root = tmp_path_factory.mktemp("runs")
    procs = {"uninterrupted": _start("train.py", root / "uninterrupted", data_dir)}
    for name in KILLS:
        procs[name] = _start("train.py", root / name, data_dir, *PAUSE, f"+callbacks.pause.marker={root / name}.paused")
    try:
        deadline = time.monotonic() + 240
        for name, sig in KILLS.items():
            marker = root / f"{name}.paused"
            while not marker.exists() and procs[name].poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert marker.exists(), procs[name].communicate(timeout=60)[0][-3000:]
            procs[name].send_signal(sig)
        outputs = {name: proc.communicate(timeout=240)[0] for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    return {name: (root / name, procs[name].returncode, outputs[name]) for name in procs}


@pytest.mark.parametrize("kill", KILLS)
def test_killed_run_resumes_to_the_same_metrics(data_dir, runs, kill):
    reference, code, out = runs["uninterrupted"]
    assert code == 0, out[-3000:]
    run_dir, code, out = runs[kill]
    if kill == "SIGTERM":  # Lightning stops cleanly; Zoo exits like a terminated process and says how to resume
        assert code == 128 + signal.SIGTERM, out[-3000:]
        assert "Stopped by SIGTERM during epoch 2" in out and "ckpt_path=last" in out
    else:
        assert code == -signal.SIGKILL, out[-3000:]
    assert not (run_dir / "metrics.json").exists()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 6)  # the end of epoch 1

    # Start it again (in this process: train.py is a thin wrapper over train()), by either switch.
    train(compose_cfg([*RUN, "ckpt_path=last" if kill == "SIGTERM" else "auto_resume=true"], run_dir, data_dir))
    assert _metrics(run_dir) == _metrics(reference)


def test_eval_reproduces_the_test_metrics_of_a_finished_run(tmp_path, data_dir, runs):
    finished_run = runs["uninterrupted"][0]
    (best,) = (finished_run / "checkpoints").glob("epoch_*.ckpt")  # the one train.py tested (save_top_k=1)
    proc = _start("eval.py", tmp_path, data_dir, f"ckpt_path={best}")
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    tested = {k: v for k, v in _metrics(finished_run).items() if k.startswith("test/")}
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    assert set(tested) == {"test/acc", "test/loss"}
    assert {k: evaluated[k] for k in tested} == tested
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, nothing saved


def test_kill_during_checkpoint_save_keeps_the_previous_last_ckpt(tmp_path, data_dir):
    """The trainer's checkpoint writer, killed by SIGKILL with the new last.ckpt half written."""
    trainer = instantiate(compose_cfg(RUN, tmp_path, data_dir).trainer)
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, AtomicCheckpointIO)
    last = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 0}, last)

    pid = os.fork()  # a real kill, without the start-up cost of a new interpreter
    if pid == 0:
        try:
            real_save = torch.save

            def save_then_die(obj, f, *args, **kwargs):
                real_save(obj, f, *args, **kwargs)
                f.flush()
                os.ftruncate(f.fileno(), f.tell() // 2)  # half written ...
                os.kill(os.getpid(), signal.SIGKILL)  # ... when the process is killed

            torch.save = save_then_die
            io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "epoch": 1}, last)
        finally:
            os._exit(3)  # not reached: the child was killed
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 0 and torch.equal(ckpt["state_dict"]["w"], torch.zeros(1000))
