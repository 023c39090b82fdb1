"""The modules of ``workers/`` and of ``gowa_py/`` import one another without a circle, and
no lower layer imports a higher one.

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


def absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The module ``from ... import`` names, relative imports (``from .x``) resolved."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph(*packages: str) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports (``from a import b`` names ``a.b`` if
    that is a module)."""
    files = {
        module_name(path): path for package in packages for path in (ROOT / package).rglob("*.py")
    }

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
            elif isinstance(node, ast.ImportFrom):
                base = absolute(module, path, node)
                targets.update(
                    known(f"{base}.{alias.name}" if base else alias.name) or known(base)
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


#: Layer -> the layers it must not import: gateway (HTTP) -> supervisor (processes) -> ipc
#: (wire) -> workers -> neonize, with the wire contract (protocol) below them all; the
#: sandbox network is a separate program that workers reach over the network only.
FORBIDDEN = {
    "gowa_py.sim": ("workers",),
    "workers": ("gowa_py.gateway", "gowa_py.supervisor"),
    "gowa_py.supervisor": ("gowa_py.gateway",),
    "gowa_py.ipc": ("gowa_py.supervisor", "gowa_py.gateway"),
    "gowa_py.protocol": ("gowa_py.gateway", "gowa_py.supervisor", "gowa_py.ipc", "workers"),
}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for layer, higher in FORBIDDEN.items()
        for module, targets in graph.items()
        if within(module, layer)
        for target in targets
        if any(within(target, above) for above in higher)
    )


def test_gowa_py_and_workers_have_no_import_cycle() -> None:
    graph = import_graph("gowa_py", "workers")
    # Relative imports (the sandbox's) and imports across the two packages are followed.
    assert "gowa_py.sim.store" in graph["gowa_py.sim.api"]
    assert "gowa_py.protocol" in graph["workers.worker"]
    assert_acyclic(graph)


def test_no_layer_imports_a_higher_one() -> None:
    graph = import_graph("gowa_py", "workers")
    assert upward_imports({"workers.x": {"gowa_py.gateway.app"}}) == [
        "workers.x -> gowa_py.gateway.app"
    ]
    assert upward_imports(graph) == []
