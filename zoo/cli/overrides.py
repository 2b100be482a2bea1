"""A command's overrides composed once, as Hydra is about to: a typo is one line, exit code 2, with a "did you
mean". A sweep is composed at its first value (a swept group's other values are looked up among its options).
The check never raises: what it cannot judge is left to Hydra."""

import difflib
import re
import sys
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigIndexError

from zoo.errors import ConfigError, exit_with_message
from zoo.registry import CONFIG_DIR, compose, names, options_with, parameters

MULTIRUN_FLAGS = ("-m", "--multirun")
SWEEP_PARAMS = "hydra.sweeper.params."


def _did_you_mean(word: str, options: Sequence[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {prefix}{close[0]}? " if close else ""


def _first_values(args: list[str]) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Each argument as (the override with a sweep at its first value, the argument as typed), an Optuna
    interval left out (its sweeper reads it); and the values of each swept config group."""
    pairs: list[tuple[str, str]] = []
    group_values: dict[str, list[str]] = {}
    for arg, override in zip(args, OverridesParser.create().parse_overrides(args), strict=True):
        if not override.is_sweep_override():
            pairs.append((arg, arg))
            continue
        try:
            values = [str(v) for v in override.sweep_string_iterator()]
        except Exception:  # noqa: BLE001 - an interval (Optuna): its sweeper reads it
            continue
        key = override.get_key_element()
        pairs.append((f"{key}={values[0]}", arg))
        name = key.lstrip("+~")
        if (CONFIG_DIR / name).is_dir() and not name.startswith("hydra"):  # a config group of Zoo's (not Hydra's)
            group_values[name] = values
    return pairs, group_values


def _key_problem(config_name: str, pairs: list[tuple[str, str]], cause: BaseException) -> str | None:
    """One line for an override naming a key (or list item) the config lacks, with a hint that works."""
    full_key = getattr(cause, "full_key", None)
    if not full_key:
        return None
    dotted = re.sub(r"\[(\d+)\]", r".\1", str(full_key))  # OmegaConf's data.augment[2]: data.augment.2
    parent, _, leaf = dotted.rpartition(".")

    def sets_it(override: str) -> bool:
        key = override.lstrip("+~").split("=", 1)[0]
        return key == dotted or key.startswith(dotted + ".")

    culprit = next((typed.lstrip("+~") for o, typed in pairs if sets_it(o)), "")
    if culprit.startswith(SWEEP_PARAMS):  # a sweep's key is set as itself
        key, _, value = culprit.partition("=")
        swept = key[len(SWEEP_PARAMS):]
        return (f"{key}: the config has no such key (to sweep {swept}, write {swept}={value}: on the command line a "
                f"key is swept under its own name, and that replaces the config's own sweep of it)")
    try:
        composed = compose([o for o, _ in pairs if not sets_it(o)], config_name)
        node = OmegaConf.select(composed, parent) if parent else composed
    except Exception:  # noqa: BLE001 - the rest does not compose either: no suggestion
        node = None
    if isinstance(cause, ConfigIndexError) or isinstance(node, ListConfig):
        size = len(node) if isinstance(node, ListConfig) else 0
        held = f"items 0..{size - 1}" if size else "no items"
        return f"{dotted}: {parent} is a list with {held}, so there is no item {leaf}"
    keys = [str(k) for k in node if str(k) != "hydra"] if isinstance(node, DictConfig) else []
    where = parent + "." if parent else ""
    params = parameters(node.get("_target_")) if isinstance(node, DictConfig) else None
    if params is not None and leaf not in params:  # a constructor's arguments: adding another would fail
        hint = _did_you_mean(leaf, params, where).strip()
        listed = ", ".join(params[:12]) + (", ..." if len(params) > 12 else "")
        return f"{dotted}: {node._target_} takes no argument {leaf} ({hint or 'its arguments: ' + listed})"
    return (f"{dotted}: the config has no such key ({_did_you_mean(leaf, keys, where)}"
            f"to add a key the config lacks, write +{dotted}=<value>)")


def _problem(config_name: str, args: list[str]) -> str | None:
    try:
        pairs, group_values = _first_values(args)
    except OverrideParseException as err:
        return (f"Cannot read the overrides ({str(err).splitlines()[0]}): write key=value, e.g. model=cnn "
                f"trainer.max_epochs=3 (https://hydra.cc/docs/advanced/override_grammar/basic/).")
    try:
        compose([o for o, _ in pairs], config_name)
    except MissingConfigException as err:
        group, _, name = str(err.missing_cfg_file or "").rpartition("/")
        return _no_option(group, name, sorted(err.options or [])) if group else str(err).splitlines()[0]
    except ConfigCompositionException as err:
        nested = re.match(r"Could not override '(\w+)/([\w/]+)'\. No match in the defaults list", str(err))
        if nested:  # e.g. data/split with data=mnist
            parent, group = nested[1], nested[0].split("'")[1]
            return (f"{group}: the chosen {parent} config has no {group} to override; it is an option of "
                    f"{parent}={'|'.join(options_with(group))} only: choose one of them, or leave {group} out")
        return _key_problem(config_name, pairs, err.__cause__) or str(err).splitlines()[0]
    for group, values in group_values.items():
        for value in values[1:]:
            if value not in names(group):
                return _no_option(group, value, names(group))
    return None


def _no_option(group: str, name: str, options: list[str]) -> str:
    return (f"{group}={name}: there is no such option in configs/{group} "
            f"({_did_you_mean(name, options, f'{group}=')}options: {', '.join(options)})")


def problem(config_name: str, args: list[str]) -> str | None:
    """What composing ``args`` would refuse, as one line with a hint; else ``None`` (Hydra then answers)."""
    try:
        return _problem(config_name, args)
    except Exception:  # noqa: BLE001 - a pre-check must never be the crash
        return None


def check_command(config_name: str, argv: list[str] | None = None) -> None:
    """Exit with one line and code 2 when the command line's overrides would not compose (Hydra's flags: left to it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in args):
        return  # --help, --cfg, --config-path (DDP ranks) ...: Hydra answers those itself
    found = problem(config_name, [a for a in args if a not in MULTIRUN_FLAGS])
    if found is not None:
        exit_with_message(ConfigError(found))
