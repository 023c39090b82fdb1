"""The modules of ``workers/`` and of ``gowa_py/`` import one another without a circle.

Function-level and ``TYPE_CHECKING`` imports count too: an import moved into a function or
behind a guard to dodge a circle at load time still ties the two modules together.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from tests.procs import ROOT


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (``from a import b`` names ``a.b`` if
    that is a module)."""
    files = {module_name(path): path for path in (ROOT / package).rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets.update(
                    known(f"{node.module}.{alias.name}") or known(node.module)
                    for alias in node.names
                )
        graph[module] = {target for target in targets if target and target != module}
    return graph


def assert_acyclic(graph: dict[str, set[str]]) -> None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_workers_have_no_import_cycle() -> None:
    graph = import_graph("workers")
    assert "workers.operations.context" in graph["workers.operations.user"]
    assert_acyclic(graph)


def test_gowa_py_has_no_import_cycle() -> None:
    """The gateway's app keys name the types they hold (``TYPE_CHECKING``), so the modules
    defining those types must not read app state."""
    graph = import_graph("gowa_py")
    assert "gowa_py.gateway.eventstream" in graph["gowa_py.gateway.keys"]
    assert "gowa_py.gateway.auth" in graph["gowa_py.gateway.keys"]
    assert_acyclic(graph)
