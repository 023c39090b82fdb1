"""Where the dashboard's files and the npm assets it serves are found.

A built wheel carries a copy of ``dashboard/`` as package data in ``gowa_py/gateway/frontend``,
in the same layout: ``index.html``, ``app/`` and, of ``node_modules``, only :data:`NPM_FILES`
and :data:`NPM_LICENSES` (``setup.py`` copies them in). An editable install or a source
checkout has no such copy and serves ``dashboard/`` at the repository root.
:func:`dashboard_dir` decides which.

This module imports nothing from the package: ``setup.py`` loads it by path to learn what to
copy. ``tests/unit/test_assets.py`` keeps :data:`NPM_FILES` in step with the files the
dashboard and ``/docs`` routes name.
"""

from __future__ import annotations

from pathlib import Path

#: The files of ``dashboard/node_modules`` that the routes serve, relative to it.
NPM_FILES = (
    "uplot/dist/uPlot.esm.js",
    "uplot/dist/uPlot.min.css",
    "swagger-ui-dist/swagger-ui.css",
    "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui-dist/swagger-ui-standalone-preset.js",
)
#: Not served: shipped next to the copies because the two packages' licenses require it.
NPM_LICENSES = ("uplot/LICENSE", "swagger-ui-dist/LICENSE", "swagger-ui-dist/NOTICE")
#: The copy inside the installed package (name relative to this module's folder).
PACKAGE_COPY = "frontend"
SOURCE_DIR = Path(__file__).resolve().parents[2] / "dashboard"


def dashboard_dir() -> Path:
    """The folder holding ``index.html``, ``app/`` and ``node_modules/``: the package's copy
    when the gateway runs from a wheel, else the source tree's ``dashboard/``."""
    installed = Path(__file__).resolve().parent / PACKAGE_COPY
    return installed if (installed / "index.html").is_file() else SOURCE_DIR
