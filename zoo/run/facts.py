"""Dataset facts (sizes, classes) read from the data itself, for the model configs' ``${facts.<name>}``."""

import hashlib
import tempfile
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from zoo.errors import ConfigError
from zoo.run.build import build
from zoo.run.rundir import exclusive


def load_data(cfg: DictConfig) -> L.LightningDataModule:
    """Build ``cfg.data``, fetch and load its files, and put its facts in ``cfg.facts``; :class:`ConfigError`
    if ``facts`` set by hand contradict the data. Processes that start together on one machine (DDP ranks,
    SLURM tasks, parallel sweep jobs) fetch (``prepare_data``) one at a time."""
    datamodule: L.LightningDataModule = build(cfg.data)
    data_dir = str(Path(getattr(datamodule, "data_dir", ".")).expanduser().resolve())
    key = hashlib.sha1(data_dir.encode()).hexdigest()[:16]
    with exclusive(Path(tempfile.gettempdir()) / f"zoo-prepare-{key}.lock"):  # only data goes in data_dir
        datamodule.prepare_data()
    facts = datamodule.facts()
    given = cfg.get("facts") if not OmegaConf.is_missing(cfg, "facts") else None
    wrong = {k: v for k, v in OmegaConf.to_container(given).items() if facts.get(k) != v} if given else {}
    if wrong:  # a DDP child gets rank zero's resolved config: the facts it carries must be the data's
        given_text = ", ".join(f"facts.{k}={v}" for k, v in wrong.items())
        data_text = ", ".join(f"{k}={facts.get(k)}" for k in wrong)
        raise ConfigError(f"{given_text}: facts come from the data ({cfg.get('data_name')} has {data_text}). "
                          f"Remove the facts.* overrides; change the data options instead.")
    with open_dict(cfg):
        cfg.facts = facts
    return datamodule
