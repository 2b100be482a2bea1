"""Zoo installs like a library: the wheel holds the code and the configs, and its commands run a job.

The slow test builds the wheel, installs it into a fresh venv holding only the wheel's declared run-time
dependencies, and runs ``zoo-train`` on every dataset format (IDX images, Planetoid's Cora, the NYC CSVs),
``zoo-eval`` and ``zoo-compare`` from a folder outside the checkout. No network: the venv gets the declared
dependencies (and theirs, by their own metadata) from the project's venv as links, never the extras (``dev``:
pytest, ...), and pip installs the wheel alone (``--no-deps --no-index``). A run-time import missing from
``dependencies`` in pyproject.toml fails here.
"""

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def _declared(wheel: Path) -> dict[str, metadata.Distribution]:
    """The installed distributions the wheel needs at run time: its ``Requires-Dist`` without extras, and theirs
    (with the extras they ask for), as this venv's metadata says. Pip comes too, to install the wheel."""
    with zipfile.ZipFile(wheel) as z:
        info = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires = email.message_from_bytes(z.read(info)).get_all("Requires-Dist") or []
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(r), {""}) for r in [*requires, "pip"]]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(req.name)
        if name in found and not req.extras:
            continue
        found[name] = metadata.distribution(req.name)
        todo += [(Requirement(r), {"", *req.extras}) for r in found[name].requires or []]
    return found


def _fresh_venv(venv: Path, wheel: Path) -> Path:
    """A new venv whose site-packages links the files of the wheel's declared dependencies (see :func:`_declared`)
    from this venv, and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"])
    for dist in _declared(wheel).values():
        for file in dist.files or []:
            parts = Path(file).parts
            if not parts or parts[0] in ("..", "__pycache__"):  # scripts in bin/, caches
                continue
            top = parts[:2] if parts[0] == "hydra_plugins" else parts[:1]  # a namespace the wheel adds to
            target, source = site.joinpath(*top), here.joinpath(*top)
            if not (target.exists() or target.is_symlink()) and source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)
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

    python = _fresh_venv(tmp_path / "venv", wheel)
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

    only_declared = _run([python, "-c", "import importlib.util as u; print([m for m in ('scipy', 'pytest', "
                          "'ruff', 'wandb', 'geopandas') if u.find_spec(m)])"], cwd=outside)
    assert only_declared.strip() == "['scipy']", only_declared  # the dev and optional extras are not there

    data = tmp_path / "data"  # a copy: the first read of each dataset builds its cache with the wheel's code
    shutil.copytree(data_dir, data, ignore=shutil.ignore_patterns("processed"))
    log_dir = tmp_path / "logs"
    common = [f"paths.data_dir={data}", f"paths.log_dir={log_dir}", "logger=csv", "trainer.accelerator=cpu"]
    for model, dataset in (("gcn", "cora"), ("logreg", "nyc_zip")):  # Planetoid's files (scipy), the NYC CSVs
        _run([bin_dir / "zoo-train", f"model={model}", f"data={dataset}", "data.download=false",
              "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / dataset}", *common], cwd=outside)
        assert 0 <= json.loads((tmp_path / dataset / "metrics.json").read_text())["test/acc"] <= 1
    _run([bin_dir / "zoo-train", "model=logreg", "data=mnist", *TINY, *common], cwd=outside)
    (run,) = (log_dir / "runs").iterdir()
    assert (run / "train.log").is_file()  # Hydra's job name is still `train`
    assert 0 <= json.loads((run / "metrics.json").read_text())["test/acc"] <= 1

    _run([bin_dir / "zoo-eval", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *TINY, *common], cwd=outside)
    (evaluation,) = (log_dir / "evals").iterdir()
    assert "test/acc" in json.loads((evaluation / "metrics.json").read_text())

    text = _run([bin_dir / "zoo-compare", log_dir / "runs"], cwd=outside)
    assert "logreg" in text and (log_dir / "runs" / "leaderboard.md").is_file()
