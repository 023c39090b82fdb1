"""What a confined worker may read of Python code: every package it has imported from,
also when an editable install's finder (not sys.path) found it, so a module imported
after confinement (lazily) is still readable."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import uuid
from pathlib import Path

from workers.system import confine


def _import_off_sys_path(root: Path) -> str:
    """Import a package under ``root`` the way an editable install's finder does: by its
    location, with ``root`` on no sys.path entry."""
    name = f"offpath_{uuid.uuid4().hex}"
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "lazy.py").write_text("VALUE = 1\n")
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    importlib.import_module(f"{name}.lazy")
    return name


def test_a_package_found_off_sys_path_is_readable_as_a_whole(tmp_path):
    assert str(tmp_path) not in sys.path
    name = _import_off_sys_path(tmp_path)
    try:
        paths = confine.python_paths.__wrapped__()
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]
    assert tmp_path / name in paths
    # Its package, not the folder around it (which may hold a data dir or credentials).
    assert tmp_path not in paths


def test_the_preload_covers_the_operations_a_worker_imports_after_confinement():
    from workers import golib

    lazy = {"workers.operations.history", "workers.operations.updates"}
    assert lazy <= set(golib.PRELOAD)
