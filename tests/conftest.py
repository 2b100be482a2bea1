"""Shared fixtures: tiny on-disk datasets and Hydra-composed configs for every model x data pair."""

from collections.abc import Callable
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
