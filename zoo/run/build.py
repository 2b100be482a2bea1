"""Building what a config names, with a constructor's refusal reported under its config key."""

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError, ZooError

_ABSENT = object()


def _found(node: DictConfig, parts: list[str]) -> bool:
    return OmegaConf.select(node, ".".join(parts), default=_ABSENT) is not _ABSENT


def _list_items_dotted(node: DictConfig, key: str) -> str:
    """Hydra's ``full_key`` of a list item lacks a dot (``data.augment0``); the config key a user types is
    ``data.augment.0``. A part that resolves as it is stays as it is."""
    prefix = node._get_full_key(None) or ""
    head = f"{prefix}." if prefix else ""
    if not key.startswith(head):
        return key
    path: list[str] = []
    for part in key[len(head):].split("."):
        item = re.fullmatch(r"(.+?)(\d+)", part)
        if not _found(node, [*path, part]) and item and _found(node, [*path, item[1], item[2]]):
            path += [item[1], item[2]]
        else:
            path.append(part)
    return head + ".".join(path)


def build(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)``; a constructor's refusal (Lightning's too) is a :class:`ConfigError`
    naming its config key (``hidden_sizes[1]=0: must be >= 1`` raised in ``model.net`` reads
    ``model.net.hidden_sizes[1]=0: must be >= 1``); a :class:`ZooError` it raised is raised as it is."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException  # torch: not for `--help`

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ZooError) and not isinstance(cause, ConfigError):
            raise cause from None
        if not isinstance(cause, ValueError | TypeError | MisconfigurationException):
            raise
        found = re.search(r"full_key: (\S+)", str(err))
        key = _list_items_dotted(node, found.group(1)) if found else node._get_full_key(None) or ""
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if not re.match(r"[\w.\[\]]+=", text):
            text = f"{key}: {text}"  # a library's own message (Lightning's Trainer, torch)
        elif not text.startswith(key.split(".")[0] + "."):
            text = f"{key}.{text}"  # a constructor's "<param>=<value>: must be ..."
        raise ConfigError(text) from cause
