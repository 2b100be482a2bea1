"""The config folder is the registry: names of models and datasets, which fit together, and which keys exist."""

import difflib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, get_object
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError


def _config_dir() -> Path:
    """The folder of package ``zoo.configs``: ``configs/`` of a checkout, shipped in the wheel as package data."""
    spec = importlib.util.find_spec("zoo.configs")  # a wheel, or an editable install that maps it to configs/
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(__file__).resolve().parents[1] / "configs"  # a checkout used without installing it


CONFIG_DIR = _config_dir()


def compose(overrides: list[str], config_name: str = "train.yaml") -> DictConfig:
    """``configs/<config_name>`` composed with ``overrides`` as the command line does, Hydra's own keys included."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
            return hydra_compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def names(group: str) -> list[str]:
    """Config names available in ``configs/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def _raw(group: str, name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / group / f"{name}.yaml").read_text()) or {}


def options_with(group: str) -> list[str]:
    """The configs of ``group``'s parent group whose defaults list picks ``group`` (``data/split``: cora, nyc_zip)."""
    parent, _, sub = group.rpartition("/")
    return [n for n in names(parent) if any(isinstance(d, dict) and sub in d for d in _raw(parent, n).get("defaults") or [])]


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


def model_kinds(name: str) -> tuple[str, ...]:
    """Data kinds the network of ``configs/model/<name>.yaml`` reads (its ``input_kinds`` class attribute)."""
    return tuple(getattr(get_class(_raw("model", name)["net"]["_target_"]), "input_kinds", ()))


def _misfit(net_target: str, data_target: str) -> tuple[tuple[str, ...], str | None, list[str]]:
    """The kinds a network reads, the data's kind, and the network's ``needs`` that the data's
    ``graph_attributes`` lack (e.g. ``initial_feat``)."""
    net, data = get_class(net_target), get_class(data_target)
    missing = [a for a in getattr(net, "needs", ()) if a not in getattr(data, "graph_attributes", ())]
    return tuple(getattr(net, "input_kinds", ())), getattr(data, "kind", None), missing


def fits(model: str, data: str) -> bool:
    """Whether ``model=<model>`` can read ``data=<data>`` (config names): its kind, and every attribute it needs."""
    kinds, kind, missing = _misfit(_raw("model", model)["net"]["_target_"], _raw("data", data)["_target_"])
    return kind in kinds and not missing


def check_compatible(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` when the chosen network cannot read the chosen data."""
    kinds, kind, missing = _misfit(cfg.model.net._target_, cfg.data._target_)
    if kind in kinds and not missing:
        return
    model, data = cfg.get("model_name", cfg.model.net._target_), cfg.get("data_name", kind)
    fitting_data = [d for d in names("data") if fits(model, d)] if model in names("model") else []
    fitting_models = [m for m in names("model") if fits(m, data)] if data in names("data") else []
    needs = f" with attribute(s) {', '.join(missing)}" if missing else ""
    lacks = f" without {', '.join(missing)}" if missing else ""
    raise ConfigError(f"model={model} works on {' or '.join(kinds)} data{needs}, but data={data} is {kind} "
                      f"data{lacks}: use model={model} with data={'|'.join(fitting_data)}, or data={data} "
                      f"with model={'|'.join(fitting_models)}.")


def parameters(target: object) -> list[str] | None:
    """The keyword arguments of a ``_target_`` class or function; None if unreadable or it takes **kwargs."""
    if not isinstance(target, str):
        return None
    try:
        params = inspect.signature(get_object(target)).parameters.values()
    except Exception:  # noqa: BLE001 - not importable here: Hydra reports it
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in keywords and p.name != "self"]


def _unknown_keys(node: Any, key: str) -> list[str]:
    """``key.name`` for every setting of a ``_target_`` node (and its children) that its class does not take."""
    if isinstance(node, list):  # e.g. data.augment: a list of transforms
        return [e for i, child in enumerate(node) for e in _unknown_keys(child, f"{key}.{i}")]
    if not isinstance(node, dict):
        return []
    keys = [k for k in node if not str(k).startswith("_")]
    takes = parameters(node.get("_target_"))
    errors = []
    for k in (k for k in keys if takes is not None and k not in takes):
        close = difflib.get_close_matches(str(k), takes, n=1)
        hint = f"did you mean {key}.{close[0]}?" if close else f"it takes: {', '.join(takes)}"
        errors.append(f"{key}.{k}: {node['_target_']} takes no such setting ({hint})")
    return errors + [e for k in keys for e in _unknown_keys(node[k], f"{key}.{k}")]


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
