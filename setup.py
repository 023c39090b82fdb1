"""The one build step pyproject.toml cannot express: the dashboard goes into the package.

A wheel has no source tree around it, so ``build_py`` copies ``dashboard/index.html``,
``dashboard/app/`` (with its subfolders) and the npm files the gateway serves (the list is
``gowa_py/gateway/assets.py``'s ``NPM_FILES``) into ``gowa_py/gateway/frontend``; a missing npm
file stops the build. The sdist carries the same files so that a wheel built from it works too.
An editable install copies nothing: it serves the source tree's ``dashboard/``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.errors import FileError

ROOT = Path(__file__).resolve().parent
DASHBOARD = ROOT / "dashboard"


def _assets() -> ModuleType:
    """``gowa_py.gateway.assets`` loaded by path (the package's dependencies may be absent)."""
    spec = importlib.util.spec_from_file_location("assets", ROOT / "gowa_py/gateway/assets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frontend_files() -> list[str]:
    """The files the package carries, relative to ``dashboard/``."""
    assets = _assets()
    npm = [f"node_modules/{name}" for name in (*assets.NPM_FILES, *assets.NPM_LICENSES)]
    missing = [name for name in npm if not (DASHBOARD / name).is_file()]
    if missing:
        raise FileError(
            f"npm assets missing in {DASHBOARD}: {', '.join(missing)}; "
            "run `make dashboard-deps` (npm ci in dashboard/) before building"
        )
    app = sorted(
        path.relative_to(DASHBOARD).as_posix()
        for path in (DASHBOARD / "app").rglob("*")
        if path.is_file()
    )
    return ["index.html", *app, *npm]


class BuildPy(build_py):
    def _frontend_targets(self) -> dict[str, Path]:
        if self.editable_mode:
            return {}
        copy = Path(self.build_lib, "gowa_py", "gateway", _assets().PACKAGE_COPY)
        return {name: copy / name for name in frontend_files()}

    def run(self) -> None:
        super().run()
        for name, target in self._frontend_targets().items():
            self.mkpath(str(target.parent))
            self.copy_file(str(DASHBOARD / name), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return [*outputs, *(str(target) for target in self._frontend_targets().values())]


class Sdist(sdist):
    def make_distribution(self) -> None:
        self.filelist.extend(f"dashboard/{name}" for name in frontend_files())
        super().make_distribution()


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
