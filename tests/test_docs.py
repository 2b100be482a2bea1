"""Every ``python train.py ...`` command in README.md and docs/*.md composes: the docs cannot drift from the configs.

A sweep (``-m``) is composed as its first job (the first value of each swept key); commands with placeholders
(``<x>``, ``...``, ``DIR``) are left out, and so is the shell-completion line.
"""

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.runs import ROOT
from zoo.registry import CONFIG_DIR

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.|\bDIR\b|TAB|-sc ")


def documented_commands() -> list[tuple[str, str]]:
    """``(file, command)`` for every ``python train.py`` command in the docs, continuation lines joined."""
    found = []
    for path in DOCS:
        text = path.read_text().replace("\\\n", " ")
        for match in re.finditer(r"(?:srun )?python train\.py([^`\n#]*)", text):
            if PLACEHOLDER.search(match.group(1)):
                continue
            args = re.split(r"&&|;|\|", match.group(1))[0].strip()  # the next shell command is not ours
            found.append((path.name, args))
    return sorted(set(found))


def first_job(args: list[str]) -> list[str]:
    """The overrides of a command's first job: ``-m`` dropped, each swept key at its first value."""
    overrides = []
    for arg in args:
        if arg in ("-m", "--multirun"):
            continue
        key, _, value = arg.partition("=")
        if "," in value and not value.startswith("["):
            value = value.split(",")[0]
        overrides.append(f"{key}={value}" if _ else arg)
    return overrides


COMMANDS = documented_commands()


def test_the_docs_hold_commands():
    assert len(COMMANDS) >= 25 and any("hydra/launcher=slurm" in c for _, c in COMMANDS)


@pytest.mark.parametrize(("doc", "command"), COMMANDS, ids=[f"{d}:{c[:60]}" for d, c in COMMANDS])
def test_documented_command_composes(doc, command):
    overrides = [a for a in first_job(shlex.split(command)) if a not in ("--cfg", "job")]
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train.yaml", overrides=overrides, return_hydra_config=True)
    assert cfg.model and cfg.data and cfg.trainer
