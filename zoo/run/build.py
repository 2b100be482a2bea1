"""Building what a config names, with a constructor's refusal reported under its config key."""

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from zoo.errors import ConfigError, ZooError


def build(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node)``; a constructor that refuses a value is a :class:`~zoo.errors.ConfigError`
    naming its config key: ``hidden_sizes[1]=0: must be >= 1`` raised in ``model.net`` reads
    ``model.net.hidden_sizes[1]=0: must be >= 1``. Lightning's own refusals (``trainer.devices=0``) alike.

    Raises:
        ZooError: The constructor raised it (e.g. data files missing), or refused a value (``ConfigError``).
    """
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
        key = found.group(1) if found else node._get_full_key(None) or ""
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if re.match(r"[\w.\[\]]+=", text) and not text.startswith(key.split(".")[0] + "."):
            text = f"{key}.{text}"  # a constructor's "<param>=<value>: must be ..."
        elif not re.match(r"[\w.\[\]]+=", text):
            text = f"{key}: {text}"  # a library's own message (Lightning's Trainer, torch)
        raise ConfigError(text) from cause
