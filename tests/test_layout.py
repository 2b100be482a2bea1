"""Imports go one way: every first-party import follows the wings below, and no module imports itself back.

Wings from the bottom up: ``zoo.errors``, ``zoo.signals`` and ``zoo.transforms`` (pure torch / PyG) <- ``zoo.nets`` <- ``zoo.tasks``
<- ``zoo.callbacks`` <- ``zoo.run`` <- ``zoo.cli`` (the commands) and ``hydra_plugins`` (Zoo's launcher, sweeper,
Hydra callbacks and resolvers, which only plug in: no functions of their own, nothing in ``zoo`` imports them); ``datamodules`` stand beside the nets (``zoo.errors``, ``zoo.transforms`` only)
and only the run layer reads them. Every import statement counts (top level, inside functions, under
``TYPE_CHECKING``): a circle that an import placed inside a function hides today comes back when it moves.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Wing (package prefix) -> prefixes of first-party modules it may import. A module belongs to the longest wing that
# names it or a package above it. The table itself must be layered (test_the_wings_are_layered): two wings that
# may import each other would let a circle in, as zoo.tasks <-> zoo.callbacks once did.
ALLOWED: dict[str, tuple[str, ...]] = {
    "zoo": (),  # the package itself (zoo/__init__.py) only; a new zoo/<x>.py must join a wing
    "zoo.errors": (),
    "zoo.files": (),  # the run folder's file names; files written whole or not at all
    "zoo.signals": ("zoo.files",),  # stop signals: exit 130/143 with one line, SLURM requeue (as zoo.errors: exit 2, one line)
    "zoo.registry": ("zoo.errors",),  # the config folder as the registry of models and datasets
    "zoo.keys": (),  # the one table of config keys that never change a result
    "zoo.checks": (),  # range checks of constructor arguments (pure Python), for every wing that takes settings
    # The lowest wing: graph transforms and the operators they compute (the flow operator and the FlowShares
    # features), pure torch / PyG, so that the DataModules and the nets share one implementation.
    "zoo.transforms": ("zoo.transforms",),
    "zoo.nets": ("zoo.nets", "zoo.transforms", "zoo.checks"),
    # A task adds its own callbacks (the delineation rounds live in zoo/tasks/delineation.py); tasks never import
    # zoo.callbacks, the callbacks read the tasks.
    "zoo.tasks": ("zoo.nets", "zoo.tasks", "zoo.errors", "zoo.checks"),
    "zoo.callbacks": ("zoo.nets", "zoo.tasks", "zoo.callbacks", "zoo.errors", "zoo.files", "zoo.checks"),
    "zoo.loggers": ("zoo.report", "zoo.files"),  # Lightning loggers of configs/logger/
    "datamodules": ("datamodules", "zoo.errors", "zoo.transforms", "zoo.checks"),
    "zoo.run": ("zoo.run", "zoo.errors", "zoo.signals", "zoo.files", "zoo.keys", "zoo.checks", "zoo.registry", "zoo.transforms",
                "zoo.nets", "zoo.tasks", "zoo.callbacks", "zoo.loggers", "zoo.report", "datamodules"),
    "zoo.report": ("zoo.report", "zoo.errors", "zoo.keys", "zoo.files"),
    "zoo.cli": ("zoo",),  # the commands: zoo-train, zoo-eval
    # Zoo's Hydra plugins (launcher, sweeper, callbacks, resolvers) stand on top: they call into zoo, and nothing in
    # zoo imports them (Hydra finds them by their _target_ and by scanning hydra_plugins).
    "hydra_plugins": ("hydra_plugins", "zoo.run", "zoo.errors", "zoo.signals", "zoo.files"),
}
FIRST_PARTY = ("zoo", "datamodules", "hydra_plugins")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(path: Path) -> list[str]:
    """Every ``zoo.*`` / ``datamodules.*`` name a file imports, anywhere in it (``from m import n``: ``m`` and ``m.n``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return [m for m in found if m.split(".")[0] in FIRST_PARTY]


def sources(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in FIRST_PARTY if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py"))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the first-party modules that importing it runs first.

    ``from a.b import c`` runs ``a``, ``a.b`` and, where it is a module, ``a.b.c``: importing a module runs the
    ``__init__`` of every package above it, which is how ``zoo.callbacks.rounds`` -> ``zoo.tasks.classifier`` came
    back round through ``zoo/tasks/__init__.py``. The importer's own packages are left out: they are already running.
    """
    modules = {module_name(p, root): p for p in sources(root)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in first_party_imports(path):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):
                target = ".".join(parts[:i])
                if target in modules and not (name == target or name.startswith(target + ".")):
                    targets.add(target)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def wing_of(name: str, allowed: dict[str, tuple[str, ...]] = ALLOWED) -> str | None:
    return max((w for w in allowed if name == w or (w != "zoo" and name.startswith(w + "."))), key=len, default=None)


def wing_graph(allowed: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Wing -> the other wings it may import (a prefix reaches its own wing and every wing below it)."""
    graph = {}
    for wing, prefixes in allowed.items():
        reached = set()
        for prefix in prefixes:
            reached |= {w for w in allowed if w == prefix or w.startswith(prefix + ".")}
            reached.add(wing_of(prefix, allowed))
        graph[wing] = reached - {wing, None}
    return graph


SOURCES = sources()


def wing_violations(name: str, path: Path, allowed: dict[str, tuple[str, ...]] = ALLOWED) -> list[str]:
    """The first-party imports of module ``name`` (at ``path``) that its wing does not allow."""
    wing = wing_of(name, allowed)
    assert wing is not None, f"{name} is in no wing: put it in zoo/nets, tasks, callbacks or run, or datamodules"
    return sorted({m for m in first_party_imports(path) if not any(m == a or m.startswith(a + ".") for a in allowed[wing])})


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_wings(path: Path) -> None:
    name = module_name(path)
    bad = wing_violations(name, path)
    assert not bad, f"{name} ({wing_of(name)}) imports {bad}; allowed: {ALLOWED[wing_of(name)]}"


def test_the_wings_are_layered() -> None:
    assert not circles(wing_graph(ALLOWED)), f"wings that may import each other: {circles(wing_graph(ALLOWED))}"


def test_no_import_circle() -> None:
    found = circles(import_graph())
    assert not found, "import circles (each list imports itself back; every import statement counts): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from zoo.run.runner import train\n\n\ndef f():\n    import zoo.nets.layers.flow_operator\n")
    assert first_party_imports(bad) == ["zoo.run.runner", "zoo.run.runner.train", "zoo.nets.layers.flow_operator"]
    assert wing_violations("datamodules.x", bad) == [  # the arrows issue 21 found, up and across
        "zoo.nets.layers.flow_operator", "zoo.run.runner", "zoo.run.runner.train"]
    assert wing_violations("zoo.run.x", bad) == []


def test_the_circle_check_can_fail(tmp_path: Path) -> None:
    """The circle issue 21 found: rounds -> tasks.classifier, whose package __init__ imports the task -> rounds."""
    files = {
        "zoo/__init__.py": "",
        "zoo/tasks/__init__.py": "from zoo.tasks.delineation import DelineationClassifier\n",
        "zoo/tasks/classifier.py": "STAGES = ()\n",
        "zoo/tasks/delineation.py": "from zoo.callbacks.rounds import DelineationRounds\n",
        "zoo/callbacks/__init__.py": "",
        "zoo/callbacks/rounds.py": "from zoo.tasks.classifier import STAGES\n",
        "zoo/nets/__init__.py": "",
        "zoo/nets/a.py": "def f():\n    from zoo.nets.b import g\n",  # inside a function: counts too
        "zoo/nets/b.py": "from zoo.nets import a\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert circles(import_graph(tmp_path)) == [
        ["zoo.callbacks.rounds", "zoo.tasks", "zoo.tasks.delineation"], ["zoo.nets.a", "zoo.nets.b"]]
    (tmp_path / "zoo/tasks/__init__.py").write_text("")
    (tmp_path / "zoo/nets/b.py").write_text("")
    assert circles(import_graph(tmp_path)) == []


def test_the_layer_check_can_fail() -> None:
    two_way = {**ALLOWED, "zoo.tasks": (*ALLOWED["zoo.tasks"], "zoo.callbacks")}  # the table before issue 21
    assert circles(wing_graph(two_way)) == [["zoo.callbacks", "zoo.tasks"]]
    upward = {**ALLOWED, "datamodules": (*ALLOWED["datamodules"], "zoo.run.runner")}
    assert circles(wing_graph(upward)) == [["datamodules", "zoo.run"]]


def plugin_functions(path: Path) -> list[str]:
    """The functions a module defines at its top level (a Hydra plugin module holds classes only)."""
    return [node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


@pytest.mark.parametrize("path", sorted((ROOT / "hydra_plugins").rglob("*.py")), ids=lambda p: p.name)
def test_hydra_plugins_only_plug_in(path: Path) -> None:
    """What a job or a sweep does lives in zoo/run; a plugin module holds the classes Hydra loads, which call it."""
    assert not plugin_functions(path), f"{path.relative_to(ROOT)} defines {plugin_functions(path)}: move them to zoo/run"


def test_the_plugin_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from zoo.run import sweep\n\n\ndef run_job():\n    pass\n\n\nclass A:\n    def f(self):\n        pass\n")
    assert plugin_functions(bad) == ["run_job"]
    (tmp_path / "z.py").write_text("from hydra_plugins.zoo_hydra.sweep import run_job\n")
    assert wing_violations("zoo.cli.z", tmp_path / "z.py") == ["hydra_plugins.zoo_hydra.sweep",
                                                                 "hydra_plugins.zoo_hydra.sweep.run_job"]
    assert wing_violations("zoo.run.z", tmp_path / "z.py") != []


RUN_FOLDER_NAMES = ("metrics.json", "error.txt", "predictions.csv", "multirun.yaml", ".zoo.lock", "config_tree.log",
                    "last.ckpt", "checkpoints", ".hydra", "zoo.RunRecord")


def name_definitions(root: Path = ROOT) -> dict[str, list[str]]:
    """Run-folder file name -> the modules that spell it as a whole string (``METRICS_FILE = "metrics.json"``, or
    ``run_dir / "metrics.json"``); each module once. Docstrings and messages that mention a name do not count."""
    found: dict[str, list[str]] = {name: [] for name in RUN_FOLDER_NAMES}
    for path in sources(root):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in found:
                module = str(path.relative_to(root))
                if module not in found[node.value]:
                    found[node.value].append(module)
    return found


def test_each_run_folder_file_name_is_defined_once():
    """Each name is spelled in zoo/files.py only; every other module imports it from there."""
    defined = name_definitions()
    assert all(v == ["zoo/files.py"] for v in defined.values()), defined


def test_the_definition_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "zoo" / "report").mkdir(parents=True)
    (tmp_path / "zoo" / "files.py").write_text('METRICS_FILE = "metrics.json"\n')
    (tmp_path / "zoo" / "report" / "runs.py").write_text(
        '"""Reads metrics.json."""\nfrom pathlib import Path\n\n\ndef read(d):\n    return Path(d) / "metrics.json"\n')
    assert name_definitions(tmp_path)["metrics.json"] == ["zoo/files.py", "zoo/report/runs.py"]
    assert name_definitions(tmp_path)["error.txt"] == []
