"""Browser tests: Debian's Chromium driven by Playwright against real processes.

A real sandbox (``gowa sim serve``) and a real gateway (``gowa serve --sandbox URL``)
run as subprocesses on free ports with temporary data dirs; each is killed with its
whole process group when the module's tests are done. Playwright's own browser
downloads are never used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Sandbox
from tests.procs import Gateway


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make system-deps installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sim = Sandbox(tmp_path_factory.mktemp("sim") / "data")
    try:
        yield sim.start()
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def sandbox_gateway(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator:
    gateway = Gateway(
        tmp_path_factory.mktemp("gateway") / "data",
        env={"GOWA_SAMPLE_INTERVAL": "1"},
        args=["--sandbox", sandbox.url],
    )
    try:
        yield gateway.start()
    finally:
        gateway.cleanup()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator:
    """A fresh browser context per test; a screenshot is saved when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        with contextlib.suppress(Exception):
            page.screenshot(path=ARTIFACTS / f"FAILED-{request.node.name}.png", full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
