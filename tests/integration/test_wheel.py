"""A wheel built from this tree, installed in a fresh venv, serves the dashboard and ``/docs``.

The editable install serves ``dashboard/`` from the source tree; an installed wheel has only
its package data, so this builds one (offline, with the shared venv's setuptools), installs it
into a new venv whose only other path is the shared venv's site-packages (a plain ``.pth``
line: the editable install's finder is not loaded), and fetches every static file from
``gowa serve`` started by the venv's ``gowa`` script, outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gowa_py.gateway import openapi
from gowa_py.gateway.dashboard import static
from tests.procs import ROOT, Gateway

pytestmark = pytest.mark.integration

SOURCE_DASHBOARD = ROOT / "dashboard"
NODE_MODULES = (SOURCE_DASHBOARD / "node_modules").resolve()
# What a source distribution holds; the rest of the checkout plays no part in the build.
NOT_SHIPPED = shutil.ignore_patterns(
    ".*",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "data",
    "bench-results",
    "tests",
    "docs",
    "node_modules",
)
PIP = [sys.executable, "-m", "pip"]
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _source_copy(dest: Path, npm: bool) -> Path:
    shutil.copytree(ROOT, dest, ignore=NOT_SHIPPED)
    if npm:
        (dest / "dashboard" / "node_modules").symlink_to(NODE_MODULES)
    return dest


def _build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=cwd, env=_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _env() -> dict[str, str]:
    """The test runs with the worktree on PYTHONPATH; the installed wheel must not see it."""
    return {**os.environ, "PYTHONPATH": ""}


def _purelib(python: Path, cwd: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return Path(_run([str(python), "-c", code], cwd).strip())


def _get(base: str, path: str) -> tuple[int, str, bytes]:
    try:
        with OPENER.open(base + path, timeout=30) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get_content_type(), exc.read()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel installed; dependencies come from the shared venv."""
    work = tmp_path_factory.mktemp("wheel")
    built = _build(_source_copy(work / "src", npm=True), work / "dist")
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("gowa_py-*.whl")
    venv = work / "venv"
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work)
    _run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        work,
    )
    purelib = _purelib(python, work)
    (purelib / "shared-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv


def test_wheel_is_what_the_fresh_venv_imports(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    purelib = str(_purelib(python, tmp_path))
    where = _run(
        [
            str(python),
            "-c",
            "import gowa_py, workers\n"
            "from gowa_py.gateway import assets\n"
            "print(gowa_py.__file__, workers.__file__, assets.dashboard_dir(), sep='\\n')",
        ],
        tmp_path,
    ).split()
    assert all(path.startswith(purelib + "/") for path in where), where
    assert where[2] == f"{purelib}/gowa_py/gateway/frontend"
    assert (Path(purelib) / "gowa_py" / "py.typed").is_file()


def test_installed_gateway_serves_dashboard_docs_and_assets(venv: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    gateway = Gateway(
        tmp_path / "data", env=_env(), command=[str(venv / "bin" / "gowa")], cwd=outside
    )
    try:
        gateway.start(timeout=90)
        base = gateway.http.base
        expected: dict[str, tuple[str, Path]] = {
            "/dashboard": ("text/html", SOURCE_DASHBOARD / "index.html"),
        }
        app_files = [path for path in (SOURCE_DASHBOARD / "app").rglob("*") if path.is_file()]
        assert any(path.parent.name in static.APP_FOLDERS for path in app_files)
        for path in sorted(app_files):
            served = f"/dashboard/{path.relative_to(SOURCE_DASHBOARD).as_posix()}"
            expected[served] = (static.CONTENT_TYPES[path.suffix], path)
        for name, relative in static.VENDOR_FILES.items():
            content_type = static.CONTENT_TYPES[Path(relative).suffix]
            expected[f"/dashboard/vendor/{name}"] = (content_type, NODE_MODULES / relative)
        for name, content_type in openapi.SWAGGER_FILES.items():
            source = NODE_MODULES / "swagger-ui-dist" / name
            expected[f"/docs/assets/{name}"] = (content_type, source)
        for path, (content_type, source) in expected.items():
            status, got_type, body = _get(base, path)
            assert (status, got_type) == (200, content_type), (path, body[:200])
            assert body == source.read_bytes(), path

        status, got_type, body = _get(base, "/docs")
        assert (status, got_type) == (200, "text/html")
        assert b"/docs/assets/swagger-ui-bundle.js" in body
        status, got_type, _ = _get(base, "/docs/assets/init.js")
        assert (status, got_type) == (200, "application/javascript")
        status, got_type, body = _get(base, "/openapi.json")
        assert (status, got_type) == (200, "application/json")
        assert b'"/api/sessions"' in body
    finally:
        gateway.cleanup()


def test_build_without_npm_assets_fails_loudly(tmp_path: Path) -> None:
    built = _build(_source_copy(tmp_path / "src", npm=False), tmp_path / "dist")
    assert built.returncode != 0
    assert "run `make dashboard-deps`" in built.stdout + built.stderr
    assert not list((tmp_path / "dist").glob("*.whl"))
