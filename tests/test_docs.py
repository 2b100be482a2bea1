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


# What a user's guide does not say: project history and lab notes (who was lent what, which commit, what an issue
# found). A commit id is 7 to 40 hex digits with at least one digit and one letter, or any such run after "commit".
LAB_NOTES = {
    "an issue": re.compile(r"\bissues?\b", re.IGNORECASE),
    "a commit id": re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b|\bcommit [0-9a-f]{7,40}\b"),
    "'lent'": re.compile(r"\blent\b", re.IGNORECASE),
    "a helper": re.compile(r"\bhelpers?\b", re.IGNORECASE),
    "'at commit'": re.compile(r"\bat commit\b", re.IGNORECASE),
    "'as the issue found'": re.compile(r"as the issue found", re.IGNORECASE),
}


def lab_notes(text: str) -> list[str]:
    """``line N: <what>: <the line>`` for every line of ``text`` that reads like a lab note."""
    return [f"line {n}: {what}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1)
            for what, pattern in LAB_NOTES.items() if pattern.search(line)]


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_docs_are_a_guide_not_lab_notes(doc):
    found = lab_notes(doc.read_text())
    assert not found, f"{doc.name} reads like lab notes:\n" + "\n".join(found)


@pytest.mark.parametrize(("line", "bad"), [
    ("target (issue)", True), ("re-run at commit 18edb9d", True), ("as the issue found", True),
    ("no GPU was lent", True), ("the helper's file", True), ("commit 9812548", True),
    ("seed 12345678 and 0.9365", False), ("excellent, the talent", False), ("sha 'deadbeef'", False),
], ids=lambda v: str(v))
def test_lab_note_phrases_are_recognised(line, bad):
    assert bool(lab_notes(line)) == bad
