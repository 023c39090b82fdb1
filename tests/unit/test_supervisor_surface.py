"""The HTTP layer sees the supervisor only through its public surface.

The runners (one per session, holding the worker's process and lifecycle task) are the
supervisor's own: a route that reads or drives one directly bypasses the per-session
lifecycle lock and ties the gateway to how workers are run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.procs import ROOT

HTTP_SIDE = ("gowa_py/gateway", "gowa_py/webhooks")
#: The supervisor's parts; the package (``gowa_py.supervisor``) is its public surface.
PRIVATE_MODULES = tuple(
    f"gowa_py.supervisor.{name}"
    for name in (
        "deletion",
        "dispatch",
        "exitreason",
        "hibernation",
        "leases",
        "locks",
        "pairing",
        "process",
        "runner",
        "supervisor",
        "transfer",
        "upkeep",
        "workerenv",
        "runnerhost",
        "zygote_client",
    )
)
PRIVATE_NAMES = {"runners", "SessionRunner", "_runners"}


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in PRIVATE_NAMES - {"runners"}:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.ImportFrom) and node.module in PRIVATE_MODULES:
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.module == "gowa_py.supervisor":
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name in PRIVATE_NAMES or a.name == "runner"
            ]
        elif isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name in PRIVATE_MODULES
            ]
    return found


def test_the_check_catches_each_way_in():
    assert offences("x = supervisor.runners.get('a')")
    assert offences("from gowa_py.supervisor.runner import SessionRunner")
    assert offences("from gowa_py.supervisor import runner")
    assert offences("import gowa_py.supervisor.runner")
    assert not offences("from gowa_py.supervisor import Supervisor, WorkerInfo")
    assert not offences("info = supervisor.worker_info('a')")


def test_gateway_and_webhooks_use_no_runner():
    found = {}
    for folder in HTTP_SIDE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if hits := offences(path.read_text()):
                found[str(path.relative_to(ROOT))] = hits
    assert found == {}, f"use Supervisor.worker_info/workers/is_running instead: {found}"


def test_the_surface_is_exported():
    import gowa_py.supervisor as supervisor

    for name in ("worker_info", "workers", "is_running", "session_count"):
        assert callable(getattr(supervisor.Supervisor, name))
    assert Path(supervisor.__file__).parent == ROOT / "gowa_py" / "supervisor"
