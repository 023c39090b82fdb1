"""The modules of ``workers/`` import one another without a circle.

Function-level imports count too: an import moved into a function to dodge a circle at
load time still ties the two modules together.
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


def test_workers_have_no_import_cycle() -> None:
    graph = import_graph("workers")
    assert "workers.operations.context" in graph["workers.operations.user"]
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
