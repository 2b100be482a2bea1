"""Dataset facts (sizes, classes) read from the data itself, for the model configs' ``${facts.<name>}``."""

import hashlib
import os
import tempfile
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import ConfigError
from zoo.run.build import build
from zoo.run.rundir import exclusive


def _lock_path(data_dir: str | os.PathLike) -> str:
    """A lock file per data folder, outside it (nothing is written into the user's data folder but data)."""
    key = hashlib.sha1(str(Path(data_dir).expanduser().resolve()).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"zoo-prepare-{key}.lock")


def load_data(cfg: DictConfig) -> L.LightningDataModule:
    """Build ``cfg.data``, fetch and load its files, and put its facts in ``cfg.facts``.

    ``prepare_data`` (downloads, decompression) runs under a file lock of the data folder, so processes that
    start together on one machine (DDP ranks, SLURM tasks, parallel sweep jobs) never write the same files at once.

    Raises:
        ConfigError: ``facts`` was set by hand to values the data contradicts.
    """
    datamodule: L.LightningDataModule = build(cfg.data)
    with exclusive(_lock_path(getattr(datamodule, "data_dir", "."))):
        datamodule.prepare_data()
    facts = datamodule.facts()
    given = cfg.get("facts") if not OmegaConf.is_missing(cfg, "facts") else None
    if given:  # a DDP child gets rank zero's resolved config: the facts it carries must be the data's
        wrong = {k: v for k, v in OmegaConf.to_container(given).items() if facts.get(k) != v}
        if wrong:
            given_text = ", ".join(f"facts.{k}={v}" for k, v in wrong.items())
            data_text = ", ".join(f"{k}={facts.get(k)}" for k in wrong)
            raise ConfigError(
                f"{given_text}: facts come from the data ({cfg.get('data_name')} has {data_text}). Remove the "
                f"facts.* overrides; change the data options instead."
            )
    with open_dict(cfg):
        cfg.facts = facts
    return datamodule
