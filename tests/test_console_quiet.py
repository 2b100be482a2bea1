"""What a command prints outside a terminal: each log line once, no escape codes, no set-up chatter, and one line
(no traceback) for Ctrl-C during start-up or a broken PyTorch install. Each test runs ``python train.py`` (or
``eval.py``) in a subprocess, its output captured as in a file or a SLURM log."""

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runs import ROOT, TINY, output, run_train

TINY_WITH_BAR = [o for o in TINY if not o.startswith("callbacks.progress_bar")] + ["callbacks.progress_bar.refresh_rate=1"]


@pytest.fixture(scope="module")
def tiny_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """A tiny run with its progress bar on, stdout and stderr captured; the run and its directory."""
    log_dir = tmp_path_factory.mktemp("quiet") / "logs"
    log_dir.mkdir()
    proc = run_train("model=logreg", "data=mnist", *TINY_WITH_BAR, data_dir=data_dir, log_dir=log_dir)
    assert proc.returncode == 0, output(proc)[-3000:]
    (run_dir,) = (log_dir / "runs").iterdir()
    return proc, run_dir


def test_each_log_line_is_printed_once_in_hydras_format(tiny_run):
    proc, run_dir = tiny_run
    printed, logged = output(proc), (run_dir / "train.log").read_text()
    for line in ("GPU available: False", "Seed set to", "`Trainer.fit` stopped"):
        assert printed.count(line) == 1 and logged.count(line) == 1, line
    assert re.search(r"^\[[\d:, -]+\]\[lightning\.pytorch\.utilities\.rank_zero\]\[INFO\] - GPU available", printed,
                     re.MULTILINE)
    assert "INFO: " not in printed  # Lightning's own format


def test_no_escape_codes_outside_a_terminal(tiny_run):
    proc, run_dir = tiny_run
    assert "logreg on mnist" in proc.stdout  # the test table
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr),
                       *((p.name, p.read_text()) for p in run_dir.glob("*.log"))):
        assert "\x1b[" not in text and "\r" not in text, name  # no escape codes, no bar refreshes


def test_progress_outside_a_terminal_is_one_log_line_per_epoch(tiny_run):
    """No bar to glue log lines onto, nothing written twice: each epoch is one line, printed and logged once."""
    proc, run_dir = tiny_run
    printed, logged = output(proc), (run_dir / "train.log").read_text()
    (line,) = [line for line in printed.splitlines() if "Epoch 1/1" in line]
    assert re.search(r"\]\[zoo\.callbacks\.progress\]\[INFO\] - Epoch 1/1: .*val/acc=\d\.\d{4}", line), line
    assert logged.count("Epoch 1/1") == 1 and "it/s" not in printed + logged
    for text in (printed, logged):  # every log line starts a line of its own
        assert not re.search(r"[^\n]\[\d{4}-\d\d-\d\d [\d:,]+\]\[", text)


def test_a_plain_one_epoch_run_says_what_it_is_in_at_most_40_lines(data_dir, tmp_path):
    """``python train.py model=logreg trainer.max_epochs=1`` with its output in a file: what runs (model, data,
    run folder), its progress and its result; the config tree only in the run folder."""
    (tmp_path / "logs").mkdir()
    proc = run_train("model=logreg", "data=mnist", "trainer.max_epochs=1", "data.val_size=100", "data.download=false",
                     data_dir=data_dir, log_dir=tmp_path / "logs", env={"PYTHONWARNINGS": "default"})
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    lines = text.splitlines()
    assert len(lines) <= 40, f"{len(lines)} lines:\n{text}"
    assert f"logreg on mnist (seed 12345): run folder {run_dir} (config in config_tree.log)" in text
    assert "Epoch 1/1: " in text and "test/acc" in text  # progress and the result
    assert "CONFIG" not in text and (run_dir / "config_tree.log").read_text().startswith("CONFIG")


def test_the_config_tree_is_printed_when_asked(data_dir, tmp_path):
    (tmp_path / "logs").mkdir()
    proc = run_train("model=logreg", "data=mnist", *TINY, "extras.print_config=true", data_dir=data_dir,
                     log_dir=tmp_path / "logs")
    assert proc.returncode == 0 and "CONFIG" in proc.stdout and "── trainer" in proc.stdout, output(proc)[-3000:]


def test_optuna_sweep_prints_no_alembic_setup(data_dir, tmp_path):
    (tmp_path / "logs").mkdir()
    proc = run_train("hparams_search=logreg", "data=mnist", "hydra.sweeper.n_trials=1", *TINY,
                     "extras.print_config=false", data_dir=data_dir, log_dir=tmp_path / "logs")
    assert proc.returncode == 0 and "Best value" in proc.stdout, output(proc)[-3000:]
    assert "setup plugin" not in output(proc) and "alembic" not in output(proc)


def _sitecustomize(folder: Path, code: str) -> dict[str, str]:
    """The environment of a Python that runs ``code`` first (a broken install, a slow import): tests only."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(folder), "PYTHONWARNINGS": "ignore"}


PAUSE = """
import sys, time
from pathlib import Path

class Pause:  # the import of {module!r} writes {marker!r} and waits (a slow disk, a cold cache)
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} and not Path({marker!r}).exists():
            Path({marker!r}).write_text("importing")
            time.sleep(120)
        return None

sys.meta_path.insert(0, Pause())
"""


@pytest.mark.parametrize(("script", "module"), [("train.py", "hydra"), ("train.py", "torch"), ("eval.py", "hydra")])
def test_ctrl_c_during_imports_is_one_line_and_130(script, module, data_dir, tmp_path):
    marker = tmp_path / "importing"
    env = _sitecustomize(tmp_path / "site", PAUSE.format(module=module, marker=str(marker)))
    (tmp_path / "logs").mkdir()
    command = [sys.executable, str(ROOT / script), "model=logreg", "data=mnist", *TINY, f"paths.data_dir={data_dir}",
               f"paths.log_dir={tmp_path / 'logs'}", *(["ckpt_path=none.ckpt"] if script == "eval.py" else [])]
    # SIGINT as a terminal delivers it (a background job's ignored SIGINT reset: see tests/test_run_safety.py)
    proc = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in out + err, err
    assert (out + err).count("Stopped by Ctrl-C (SIGINT)") == 1, out + err


BROKEN_TORCHVISION = """
import importlib.machinery, sys

class BrokenTorchvision:  # as a CUDA torchvision beside a CPU torch: its C++ operators are missing
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "torchvision" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise RuntimeError("operator torchvision::nms does not exist")

sys.meta_path.insert(0, BrokenTorchvision())
"""


def test_torch_and_torchvision_that_disagree_are_one_line_and_exit_2(data_dir, tmp_path):
    env = _sitecustomize(tmp_path / "site", BROKEN_TORCHVISION)
    (tmp_path / "logs").mkdir()
    proc = run_train("model=logreg", "data=mnist", *TINY, data_dir=data_dir, log_dir=tmp_path / "logs", env=env)
    text = output(proc)
    assert proc.returncode == 2, text[-3000:]
    assert "Traceback" not in text
    (line,) = [line for line in text.splitlines() if "InstallError" in line]
    torch, torchvision = importlib.metadata.version("torch"), importlib.metadata.version("torchvision")
    assert f"torch {torch} and torchvision {torchvision}" in line and "torchvision::nms" in line
    assert "same index" in line and "pip install --force-reinstall torch" in line
