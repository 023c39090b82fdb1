"""The build copies exactly the npm files the routes serve; a checkout serves ``dashboard/``."""

from __future__ import annotations

from gowa_py.gateway import assets, openapi
from gowa_py.gateway.dashboard import static


def test_npm_files_are_the_ones_the_routes_serve() -> None:
    served = set(static.VENDOR_FILES.values())
    served |= {f"swagger-ui-dist/{name}" for name in openapi.SWAGGER_FILES}
    assert set(assets.NPM_FILES) == served


def test_a_source_checkout_serves_the_repository_dashboard() -> None:
    assert assets.dashboard_dir() == assets.SOURCE_DIR
    assert (assets.SOURCE_DIR / "index.html").is_file()
    assert static.DASHBOARD_DIR == assets.SOURCE_DIR
