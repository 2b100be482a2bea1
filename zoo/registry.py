"""The config folder is the registry: names of models and datasets, which fit together, and which keys exist."""

import difflib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import yaml
from hydra.utils import get_class, get_object
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError


def _config_dir() -> Path:
    """The folder of package ``zoo.configs``: ``configs/`` of a checkout, shipped in the wheel as package data."""
    try:  # an installed wheel, or an editable install that maps zoo.configs to the checkout's configs/
        spec = importlib.util.find_spec("zoo.configs")
    except ModuleNotFoundError:
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parents[1] / "configs"  # a checkout used without installing it


CONFIG_DIR = _config_dir()


def names(group: str) -> list[str]:
    """Config names available in ``configs/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _raw(group: str, name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / group / f"{name}.yaml").read_text()) or {}


def models_of(net_target: str) -> str:
    """``model=<name>|... (<net_target>)``: the model configs whose network is ``net_target`` (for messages)."""
    found = [name for name in names("model") if (_raw("model", name).get("net") or {}).get("_target_") == net_target]
    return f"model={'|'.join(found)} ({net_target})" if found else net_target


def kind_of_data(data_target: str) -> str | None:
    """``kind`` (``image`` or ``graph``) declared by a DataModule class (its ``kind`` class attribute)."""
    return getattr(get_class(data_target), "kind", None)


def data_kind(name: str) -> str | None:
    """``kind`` of the DataModule that ``configs/data/<name>.yaml`` builds."""
    return kind_of_data(_raw("data", name)["_target_"])


def model_input_kinds(net_target: str) -> tuple[str, ...]:
    """Data kinds a network class declares it can read (its ``input_kinds`` class attribute)."""
    return tuple(getattr(get_class(net_target), "input_kinds", ()))


def model_kinds(name: str) -> tuple[str, ...]:
    return model_input_kinds(_raw("model", name)["net"]["_target_"])


def missing_attributes(net_target: str, data_target: str) -> list[str]:
    """Graph attributes a network ``needs`` (e.g. ``initial_feat``) that the data's ``graph_attributes`` lack."""
    has = getattr(get_class(data_target), "graph_attributes", ())
    return [a for a in getattr(get_class(net_target), "needs", ()) if a not in has]


def fits(model: str, data: str) -> bool:
    """Whether ``model=<model>`` can read ``data=<data>`` (config names): its kind, and every attribute it needs."""
    net, dm = _raw("model", model)["net"]["_target_"], _raw("data", data)["_target_"]
    return kind_of_data(dm) in model_input_kinds(net) and not missing_attributes(net, dm)


def check_compatible(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` when the chosen network cannot read the chosen data."""
    kinds = model_input_kinds(cfg.model.net._target_)
    kind = kind_of_data(cfg.data._target_)
    missing = missing_attributes(cfg.model.net._target_, cfg.data._target_)
    if kind in kinds and not missing:
        return
    model, data = cfg.get("model_name", cfg.model.net._target_), cfg.get("data_name", kind)
    fitting_data = [d for d in names("data") if fits(model, d)] if model in names("model") else []
    fitting_models = [m for m in names("model") if fits(m, data)] if data in names("data") else []
    needs = f" with attribute(s) {', '.join(missing)}" if missing else ""
    lacks = f" without {', '.join(missing)}" if missing else ""
    raise ConfigError(
        f"model={model} works on {' or '.join(kinds)} data{needs}, but data={data} is {kind} data{lacks}: "
        f"use model={model} with data={'|'.join(fitting_data)}, or data={data} with model={'|'.join(fitting_models)}."
    )


def _unknown_keys(node: Any, key: str) -> list[str]:
    """``key.name`` for every setting of a ``_target_`` node (and its children) that its class does not take."""
    errors: list[str] = []
    if isinstance(node, list):  # e.g. data.augment: a list of transforms
        return [e for i, child in enumerate(node) for e in _unknown_keys(child, f"{key}.{i}")]
    if not isinstance(node, dict):
        return errors
    target = node.get("_target_")
    if isinstance(target, str) and "${" not in target:
        try:
            params = inspect.signature(get_object(target)).parameters
        except (ValueError, TypeError, ImportError, AttributeError):  # not importable here: Hydra reports it
            params = None
        if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            names = [n for n, p in params.items() if n != "self" and p.kind is not p.VAR_POSITIONAL]
            for k in (k for k in node if not str(k).startswith("_") and k not in params):
                close = difflib.get_close_matches(str(k), names, n=1)
                hint = f"did you mean {key}.{close[0]}?" if close else f"it takes: {', '.join(names)}"
                errors.append(f"{key}.{k}: {target} takes no such setting ({hint})")
    for k, child in node.items():
        if not str(k).startswith("_"):
            errors += _unknown_keys(child, f"{key}.{k}")
    return errors


def check_keys(cfg: DictConfig, sections: tuple[str, ...] = ("data", "model", "trainer", "callbacks", "logger")) -> None:
    """Raise :class:`ConfigError` naming every key the built classes do not take (a typo, or a removed key)."""
    errors = []
    for section in sections:
        if section in cfg and OmegaConf.is_dict(cfg[section]):
            try:
                node = OmegaConf.to_container(cfg[section], resolve=True)
            except Exception:  # noqa: BLE001 - an unresolvable value is reported where it is used
                node = OmegaConf.to_container(cfg[section], resolve=False)
            errors += _unknown_keys(node, section)
    if errors:
        raise ConfigError("Unknown settings (a typo? remove them or fix the name):\n  " + "\n  ".join(errors))
