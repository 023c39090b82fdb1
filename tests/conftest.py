from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import Gateway


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator:
    """Start gateways on free ports; every one is killed (with its workers) afterwards."""
    started: list[Gateway] = []

    def make(
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        args: list[str] | None = None,
        start: bool = True,
    ) -> Gateway:
        gateway = Gateway(data_dir or tmp_path / "data", env=env, args=args)
        started.append(gateway)
        return gateway.start() if start else gateway

    yield make
    for gateway in started:
        gateway.cleanup()


@pytest.fixture
def gateway(gateway_factory) -> Gateway:
    return gateway_factory()
