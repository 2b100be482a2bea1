"""Zoo installs like a library: the wheel holds the code and the configs, and its commands run a job.

The slow test builds the wheel, installs it into a fresh venv and runs ``zoo-train``, ``zoo-eval`` and
``zoo-compare`` from a folder outside the checkout. No network: the venv gets the dependencies of the project's
venv as links (not Zoo itself), and pip installs the wheel alone (``--no-deps --no-index``).
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.runs import TINY

ROOT = Path(__file__).resolve().parents[1]
CODE = ("zoo", "datamodules", "hydra_plugins")  # the folders of Python packages; configs/ ships as zoo.configs
SOURCES = ("pyproject.toml", "README.md", "LICENSE", *CODE, "configs")  # what building the wheel reads


def _package_folders() -> set[str]:
    """Every package under CODE: folders holding .py files, and the folders above them."""
    found = set()
    for top in CODE:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.parent.relative_to(ROOT).parts
            found |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
    return found


def test_every_package_is_listed() -> None:
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    expected = _package_folders() | {"zoo.configs"}
    assert not expected - listed, f"add {sorted(expected - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert not listed - expected, f"remove {sorted(listed - expected)} from [tool.setuptools] packages"
    assert setuptools["package-dir"]["zoo.configs"] == "configs"


def _build_wheel(tmp: Path) -> Path:
    """``pip wheel`` of a copy of the sources (no build/ or egg-info written into the checkout)."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, text=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("zoo-*.whl")
    return wheel


def _fresh_venv(venv: Path) -> Path:
    """A new venv whose site-packages links every package of this one (pip, torch, ...) but Zoo's own entries."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name in ("zoo", "datamodules", "__pycache__") or entry.name.startswith(("zoo-", "__editable__")):
            continue
        if entry.name == "hydra_plugins":  # a namespace the wheel adds to: a folder of its own, its plugins linked
            (site / entry.name).mkdir()
            for plugin in entry.iterdir():
                (site / entry.name / plugin.name).symlink_to(plugin)
        else:
            (site / entry.name).symlink_to(entry)
    return python


def _run(command: list, cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(c) for c in command], cwd=cwd, env={**env, "PYTHONWARNINGS": "ignore"},
                          capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command[0]} exited {proc.returncode}:\n{text[-3000:]}"
    return text


@pytest.mark.slow
def test_wheel_installs_and_runs_a_job(tmp_path: Path, data_dir: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {f"zoo/configs/{p.relative_to(ROOT / 'configs').as_posix()}" for p in (ROOT / "configs").rglob("*.yaml")}
    assert configs and not configs - names, sorted(configs - names)[:5]  # every config ships, as package data
    code = {p.relative_to(ROOT).as_posix() for top in CODE for p in (ROOT / top).rglob("*.py")}
    assert not code - names, sorted(code - names)[:5]  # every module ships, the Hydra plugin included

    python = _fresh_venv(tmp_path / "venv")
    bin_dir = python.parent
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check", "-q", wheel],
         cwd=tmp_path)
    outside = tmp_path / "elsewhere"  # not the checkout: nothing of it on sys.path
    outside.mkdir()
    where = _run([python, "-c", "import zoo, hydra_plugins.zoo_hydra as p; from zoo.registry import "
                  "CONFIG_DIR; print(zoo.__file__, p.__file__, CONFIG_DIR, sep='\\n')"], cwd=outside)
    for line in where.split():
        assert Path(line).resolve().is_relative_to((tmp_path / "venv").resolve()), where
        assert not Path(line).resolve().is_relative_to(ROOT), where

    log_dir = tmp_path / "logs"
    common = [f"paths.data_dir={data_dir}", f"paths.log_dir={log_dir}", "logger=csv", "trainer.accelerator=cpu"]
    _run([bin_dir / "zoo-train", "model=logreg", "data=mnist", *TINY, *common], cwd=outside)
    (run,) = (log_dir / "runs").iterdir()
    assert (run / "train.log").is_file()  # Hydra's job name is still `train`
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/acc"] <= 1

    _run([bin_dir / "zoo-eval", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *TINY, *common], cwd=outside)
    (evaluation,) = (log_dir / "evals").iterdir()
    assert "test/acc" in json.loads((evaluation / "metrics.json").read_text())

    text = _run([bin_dir / "zoo-compare", log_dir / "runs"], cwd=outside)
    assert "logreg" in text and (log_dir / "runs" / "leaderboard.md").is_file()
