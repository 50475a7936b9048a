"""The architecture's layers hold: lower layers never import higher ones, and no module
imports, at import time, a module that imports it back."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
# The map's layers (ARCHITECTURE.md): compute, reports, state, runtime, surfaces.
LAYER = {
    # A base module (opsloop.errors) that every layer may import.
    "errors": 0,
    "data": 1,
    "detect": 1,
    "analysis": 1,
    "learn": 1,
    "datasets": 1,
    "reports": 2,
    "store": 3,
    "contract": 3,
    "tracking": 3,
    "registry": 3,
    "serving": 4,
    "monitoring": 4,
    "server": 5,
    "ui": 5,
    "cli": 5,
}
# The package's own entry points may reach every layer.
ENTRY_POINTS = {"opsloop", "opsloop.__main__"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "opsloop").rglob("*.py"):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _module_level(statements: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run on import: the body, into ``if`` and ``try`` blocks (not
    ``if TYPE_CHECKING:``, which never runs), not into functions or classes."""
    found = []
    for node in statements:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                found += _module_level(node.body) + _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _module_level(block)
        else:
            found.append(node)
    return found


def _with_parents(name: str) -> set[str]:
    # Importing opsloop.a.b runs opsloop/__init__ and opsloop/a/__init__ first.
    parts = name.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts) + 1)}


def _imports(tree: ast.Module, modules: dict[str, Path], top_level: bool) -> set[str]:
    """The opsloop modules imported (at import time only, when ``top_level``)."""
    nodes = _module_level(tree.body) if top_level else ast.walk(tree)
    imported = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names if a.name.startswith("opsloop"))
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative imports are not used in opsloop"
            if not node.module or not node.module.startswith("opsloop"):
                continue
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            imported.update(submodules)
            if len(submodules) < len(node.names):
                imported.add(node.module)
    if top_level:
        imported = set().union(*(_with_parents(name) for name in imported))
    return imported


def test_every_package_has_a_layer():
    packages = {name.split(".")[1] for name in MODULES if name.count(".") >= 1}
    assert packages - {"__main__"} <= LAYER.keys()


@pytest.mark.parametrize("module", sorted(set(MODULES) - ENTRY_POINTS))
def test_a_module_imports_only_its_layer_and_those_below(module):
    layer = LAYER[module.split(".")[1]]
    tree = ast.parse(MODULES[module].read_text())
    higher = sorted(
        name
        for name in _imports(tree, MODULES, top_level=False)
        if name.count(".") >= 1 and LAYER.get(name.split(".")[1], 0) > layer
    )
    assert higher == [], f"{module} (layer {layer}) imports a higher layer: {higher}"


def _assert_no_cycle(graph: dict[str, set[str]]) -> None:
    """A depth-first search that fails on the first cycle it closes, naming it."""
    cycle = _first_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def _first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first cycle a depth-first search closes, its first name repeated at its end."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        trail.append(name)
        for target in sorted(graph[name] - {name}):
            if state.get(target) == 1:
                return [*trail[trail.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[name] = 2
        trail.pop()
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def test_no_import_cycles_at_import_time():
    graph = {
        # A submodule imports its own packages (they are already being imported): no edge.
        name: (_imports(ast.parse(path.read_text()), MODULES, top_level=True) - _with_parents(name))
        & MODULES.keys()
        for name, path in MODULES.items()
    }
    _assert_no_cycle(graph)


SURFACES = {"server", "ui", "cli"}
# A surface may start another only through that one's entry function: ``opsloop server`` runs
# :func:`opsloop.server.launch.serve`, which needs nothing of the cli to run.
# The server mounts the dashboard through :func:`opsloop.ui.mount.install_dashboard`, handing
# it the server's token check, so the ui needs nothing of the server.
SURFACE_ENTRY_POINTS = {"opsloop.server.launch", "opsloop.ui.mount"}


def _surface(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in SURFACES else None


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _surface(name)))
def test_no_surface_imports_another(module):
    """Imports anywhere count: in functions, methods, ``if`` and ``try`` blocks."""
    own = _surface(module)
    tree = ast.parse(MODULES[module].read_text())
    others = sorted(
        name
        for name in _imports(tree, MODULES, top_level=False)
        if _surface(name) not in (None, own) and name not in SURFACE_ENTRY_POINTS
    )
    assert others == [], f"{module} (surface {own}) imports another surface: {others}"


def test_the_server_entry_point_needs_no_other_surface():
    """What ``opsloop server`` imports of the server, followed through every import it makes
    (inside functions too), never reaches the cli; of the ui only what the server serves (the
    dashboard, through its mount), never the other way."""
    graph = {
        name: _imports(ast.parse(path.read_text()), MODULES, top_level=False) & MODULES.keys()
        for name, path in MODULES.items()
    }
    reached, frontier = set(), ["opsloop.server.__main__", *SURFACE_ENTRY_POINTS]
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier += graph.get(name, ())
    assert sorted(name for name in reached if _surface(name) == "cli") == []
    assert "opsloop.ui.mount" in reached


def test_no_import_cycles_anywhere():
    """Cycles through imports made inside functions too (a lazy import hides a circle from
    the import-time test but still ties the two modules together)."""
    graph = {
        name: (_imports(ast.parse(path.read_text()), MODULES, top_level=False) - {name})
        & MODULES.keys()
        for name, path in MODULES.items()
    }
    _assert_no_cycle(graph)


@pytest.mark.parametrize("module", sorted(n for n in MODULES if n.endswith("_routes")))
def test_routes_hold_no_sql(module):
    """A route calls the library; the queries live in the state layer."""
    tree = ast.parse(MODULES[module].read_text())
    names = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    names |= {
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for a in node.names
    }
    sql = sorted(n for n in names if n.startswith("sqlalchemy") or n == "opsloop.store.tables")
    assert sql == [], f"{module} imports {sql}"


#: Imports that close a cycle between two packages and still stand, each as (importing
#: module, imported module) with why it is not cut yet. An entry must still name an import
#: the code makes and one that closes a cycle, so it is removed once that is no longer so.
PACKAGE_CYCLES_LEFT: dict[tuple[str, str], str] = {
    # serving -> monitoring, the wrong way round: the monitoring consumes serving's events
    # and acts through its deployments. Each keeps a public serving entry point doing what
    # it does when built directly (``Deployments(db).retire``, ``ServingRuntime(db)``,
    # ``remote_runtime``, a canary's quality gates), and cutting it means moving monitoring
    # code below serving (the policy grammar, the reference, the monitoring's HTTP client)
    # or having every caller hand the monitoring's part in.
    ("opsloop.serving.deployments", "opsloop.monitoring.retired_monitoring"): (
        "a retire cancels the monitor's pending actions and retrain requests and moves its "
        "records to the history, in the retire's transaction"
    ),
    ("opsloop.serving.serving_runtime", "opsloop.monitoring.monitoring_gauges"): (
        "a runtime on a store shows the monitoring's gauges on its /metrics"
    ),
    ("opsloop.serving.remote_serving", "opsloop.monitoring.http_monitoring"): (
        "a runtime on a URL reads the monitoring's gauges through the monitoring's client"
    ),
    ("opsloop.serving.remote_serving", "opsloop.monitoring.remote_gauges"): (
        "a runtime on a URL shows those gauges, read at most every refresh_s"
    ),
    ("opsloop.serving.rollout_observer", "opsloop.monitoring.canary_quality"): (
        "a canary's drift and estimate gates are judged against the deployment's reference"
    ),
    # Within the compute layer: the label-free estimate calibrates reference scores, and
    # the release gate runs the robustness attacks (learn uses analysis's slices and
    # assertions).
    ("opsloop.data.reference_scores", "opsloop.analysis.performance_estimation"): (
        "the reference's scores are calibrated by the performance estimator"
    ),
    **{
        ("opsloop.analysis.gate.attack_checks", f"opsloop.learn.robustness{part}"): (
            "the release gate's attack checks run learn.robustness's attacks"
        )
        for part in ("", ".evasion", ".membership", ".torch_classifier")
    },
    # Within the state layer: tracking's service is declared with the contract, whose wire
    # types validate with tracking's filters and limits.
    ("opsloop.contract.wire_types", "opsloop.tracking.filter_parser"): (
        "a run filter on the wire is parsed by tracking's filter grammar"
    ),
    ("opsloop.contract.wire_types", "opsloop.tracking.limits"): (
        "the wire types bound their fields by tracking's limits"
    ),
}


def _package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) >= 2 else None


def _package_imports() -> set[tuple[str, str]]:
    """``(module, imported module)`` for every import of a module of another package,
    counting every import statement (in functions, methods, ``try`` and ``if
    TYPE_CHECKING:`` blocks: a type-only import ties the packages as much as another); not
    doctest text, which only the examples run."""
    found: set[tuple[str, str]] = set()
    for name, path in MODULES.items():
        for target in _imports(ast.parse(path.read_text()), MODULES, top_level=False):
            if None not in (_package(name), _package(target)) and _package(target) != _package(
                name
            ):
                found.add((name, target))
    return found


def _package_graph(imports: set[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {package: set() for package in LAYER}
    for module, target in imports:
        graph.setdefault(str(_package(module)), set()).add(str(_package(target)))
    return graph


def test_no_import_cycles_between_packages():
    """No chain of imports leads from a package back to itself (``opsloop.X -> opsloop.Y
    -> ... -> opsloop.X``), counting imports inside functions and ``if TYPE_CHECKING:``
    blocks, not doctest text; but for the imports :data:`PACKAGE_CYCLES_LEFT` names. The
    failure names the cycle and, for each step, the imports that make it."""
    imports = _package_imports() - PACKAGE_CYCLES_LEFT.keys()
    cycle = _first_cycle(_package_graph(imports))
    if cycle is not None:
        made_by = [
            f"  {a} -> {b}: "
            + ", ".join(
                f"{module} imports {target}"
                for module, target in sorted(imports)
                if (_package(module), _package(target)) == (a, b)
            )
            for a, b in itertools.pairwise(cycle)
        ]
        raise AssertionError("import cycle " + " -> ".join(cycle) + "\n" + "\n".join(made_by))


def test_every_package_cycle_left_still_stands():
    """An entry of :data:`PACKAGE_CYCLES_LEFT` names an import the code still makes, and one
    that still closes a cycle (its package is reached back from the one it imports)."""
    imports = _package_imports()
    graph = _package_graph(imports)
    for module, target in PACKAGE_CYCLES_LEFT:
        assert (module, target) in imports, f"{module} no longer imports {target}: remove it"
        reached, frontier = set(), [str(_package(target))]
        while frontier:
            name = frontier.pop()
            if name not in reached:
                reached.add(name)
                frontier += graph.get(name, ())
        assert _package(module) in reached, f"{module} -> {target} closes no cycle: remove it"
