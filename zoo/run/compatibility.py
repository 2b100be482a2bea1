"""The config folder is the registry: names of models and datasets, and which fit together."""

from pathlib import Path

import yaml
from hydra.utils import get_class
from omegaconf import DictConfig

from zoo.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def names(group: str) -> list[str]:
    """Config names available in ``configs/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _raw(group: str, name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / group / f"{name}.yaml").read_text()) or {}


def data_kind(name: str) -> str | None:
    """``kind`` (``image`` or ``graph``) declared by ``configs/data/<name>.yaml``."""
    return _raw("data", name).get("kind")


def model_input_kinds(net_target: str) -> tuple[str, ...]:
    """Data kinds a network class declares it can read (its ``input_kinds`` class attribute)."""
    return tuple(getattr(get_class(net_target), "input_kinds", ()))


def model_kinds(name: str) -> tuple[str, ...]:
    return model_input_kinds(_raw("model", name)["net"]["_target_"])


def check_compatible(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` when the chosen network cannot read the chosen data."""
    kinds = model_input_kinds(cfg.model.net._target_)
    kind = cfg.data.get("kind")
    if kind in kinds:
        return
    model, data = cfg.get("model_name", cfg.model.net._target_), cfg.get("data_name", kind)
    fitting_data = [d for d in names("data") if data_kind(d) in kinds]
    fitting_models = [m for m in names("model") if kind in model_kinds(m)]
    raise ConfigError(
        f"model={model} works on {' or '.join(kinds)} data, but data={data} is {kind} data: "
        f"use model={model} with data={'|'.join(fitting_data)}, or data={data} with model={'|'.join(fitting_models)}."
    )
