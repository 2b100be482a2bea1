"""The package's wings import only downwards: nets <- tasks/callbacks <- run; datamodules never import the run layer."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Package prefix -> prefixes of first-party modules it may import.
ALLOWED: dict[str, tuple[str, ...]] = {
    "zoo": (),  # the package itself (zoo/__init__.py) only; a new zoo/<x>.py must join a wing
    "zoo.errors": (),
    "zoo.nets": ("zoo.nets",),
    "zoo.tasks": ("zoo.nets", "zoo.tasks", "zoo.callbacks", "zoo.errors"),
    "zoo.callbacks": ("zoo.nets", "zoo.tasks", "zoo.callbacks", "zoo.errors"),
    # zoo.nets.layers.flow_operator: the one flow operator, shared by the flow baselines and the NYC flow-share features.
    "datamodules": ("datamodules", "zoo.errors", "zoo.nets.layers.flow_operator"),
    "zoo.run": ("zoo", "datamodules"),
    "zoo.report": ("zoo.report", "zoo.errors"),
}
FIRST_PARTY = ("zoo", "datamodules")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(path: Path) -> list[str]:
    """Every ``zoo.*`` / ``datamodules.*`` module a file imports (top level or inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [m for m in found if m.split(".")[0] in FIRST_PARTY]


SOURCES = sorted(p for pkg in FIRST_PARTY for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_wings(path: Path) -> None:
    name = module_name(path)
    wing = max((w for w in ALLOWED if name == w or (w != "zoo" and name.startswith(w + "."))), key=len, default=None)
    assert wing is not None, f"{name} is in no wing: put it in zoo/nets, tasks, callbacks or run, or datamodules"
    bad = [m for m in first_party_imports(path)
           if not any(m == a or m.startswith(a + ".") for a in ALLOWED[wing])]
    assert not bad, f"{name} ({wing}) imports {bad}; allowed: {ALLOWED[wing]}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from zoo.run.runner import train\n")
    assert first_party_imports(bad) == ["zoo.run.runner"]
