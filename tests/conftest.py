"""Shared fixtures: tiny on-disk datasets and Hydra-composed configs for every model x data pair."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

from tests.fakes import write_fake_data
from tests.slurm import slurm_cluster  # noqa: F401 - the fixture of tests marked slurm
from zoo.registry import data_kind, fits, names
from zoo.run.runner import compose_config

MODELS = names("model")
DATASETS = names("data")
PAIRS = [(m, d) for m in MODELS for d in DATASETS if fits(m, d)]
BAD_PAIRS = [(m, d) for m in MODELS for d in DATASETS if not fits(m, d)]


# Set by pytest itself, and once by pyogrio on its first import (for GDAL and PROJ): not a test's doing.
IMPORTS_SET = {"PYTEST_CURRENT_TEST", "GDAL_CURL_CA_BUNDLE", "PROJ_CURL_CA_BUNDLE"}


@pytest.fixture(autouse=True)
def environment_kept() -> Iterator[None]:
    """A test leaves os.environ as it found it: the processes later tests start inherit it (a leaked LOCAL_RANK
    made a later two-process run wait forever for a rank it never started)."""
    before = dict(os.environ)
    yield
    leaked = {k: os.environ.get(k) for k in before.keys() | os.environ.keys()
              if os.environ.get(k) != before.get(k) and k not in IMPORTS_SET}
    for name in leaked:  # restored: the tests that follow are not affected
        if name in before:
            os.environ[name] = before[name]
        else:
            del os.environ[name]
    if leaked:
        pytest.fail(f"the test changed os.environ: {leaked}")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding every dataset, tiny, in its real file format."""
    return write_fake_data(tmp_path_factory.mktemp("data"))


def compose_cfg(overrides: list[str], output_dir: Path, data_dir: Path) -> DictConfig:
    """Compose ``configs/train.yaml`` like ``python train.py <overrides>`` does, for tests."""
    cfg = compose_config(overrides, output_dir, data_dir)
    if data_kind(cfg.data_name) == "image" and not any(o.startswith("data.val_size") for o in overrides):
        with open_dict(cfg):
            cfg.data.val_size = 100  # the fake training sets hold 600 images
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """``make_cfg("model=mlp", "data=mnist", ...)`` -> a composed config writing into ``tmp_path``."""

    def _make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_cfg(
            ["trainer.accelerator=cpu", "logger=csv", *overrides], output_dir or tmp_path, data_dir
        )

    return _make
