"""A command's overrides composed once, as Hydra is about to: a typo is one line, exit code 2, with a "did you mean"."""

import difflib
import sys
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from zoo.errors import ConfigError, exit_with_message
from zoo.registry import CONFIG_DIR

MULTIRUN_FLAGS = ("-m", "--multirun")
MAX_COMPOSES = 20  # one per value of each swept key, the other keys at their first value


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def _did_you_mean(word: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {prefix}{close[0]}? " if close else ""


def _variants(args: list[str]) -> list[list[str]]:
    """``args`` with every sweep at its first value, then once per other value of each swept key."""
    parsed = OverridesParser.create().parse_overrides(args)
    swept: list[tuple[int, list[str]]] = []
    base = list(args)
    for i, override in enumerate(parsed):
        if not override.is_sweep_override():
            continue
        try:
            values = list(override.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - an interval (Optuna): its sweeper reads it
            base[i] = None
            continue
        key = override.get_key_element()
        swept.append((i, [f"{key}={v}" for v in values]))
        base[i] = swept[-1][1][0]
    variants = [base]
    for i, values in swept:
        variants += [[*base[:i], value, *base[i + 1:]] for value in values[1:]]
    return [[a for a in v if a is not None] for v in variants[:MAX_COMPOSES]]


def problem(config_name: str, args: list[str]) -> str | None:
    """What composing ``args`` (overrides only) would refuse, as one line with a hint; ``None`` if it composes."""
    try:
        variants = _variants(args)
    except OverrideParseException as err:
        return (f"Cannot read the overrides ({str(err).splitlines()[0]}): write key=value, e.g. model=cnn "
                f"trainer.max_epochs=3 (https://hydra.cc/docs/advanced/override_grammar/basic/).")
    for overrides in variants:
        try:
            _compose(config_name, overrides)
        except MissingConfigException as err:
            group, _, name = str(err.missing_cfg_file or "").rpartition("/")
            if not group:
                return str(err).splitlines()[0]
            options = sorted(err.options or [])
            return (f"{group}={name}: there is no such option in configs/{group} "
                    f"({_did_you_mean(name, options, f'{group}=')}options: {', '.join(options)})")
        except ConfigCompositionException as err:
            full_key = getattr(err.__cause__, "full_key", None)
            if not full_key:
                return str(err).splitlines()[0]
            parent, _, leaf = full_key.rpartition(".")
            key_of = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
            others = [o for o, k in zip(overrides, key_of, strict=True) if k != full_key and not k.startswith(full_key + ".")]
            node = _compose(config_name, others)
            node = OmegaConf.select(node, parent) if parent else node
            keys = [str(k) for k in node if str(k) != "hydra"] if isinstance(node, DictConfig) else []
            return (f"{full_key}: the config has no such key ({_did_you_mean(leaf, keys, parent + '.' if parent else '')}"
                    f"to add a key the config lacks, write +{full_key}=<value>)")
    return None


def check_command(config_name: str, argv: list[str] | None = None) -> None:
    """Exit with one line and code 2 when the command line's overrides would not compose (Hydra's flags: left to it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in args):
        return  # --help, --cfg, --config-path (DDP ranks) ...: Hydra answers those itself
    found = problem(config_name, [a for a in args if a not in MULTIRUN_FLAGS])
    if found is not None:
        exit_with_message(ConfigError(found))
