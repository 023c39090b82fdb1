"""An in-process gateway app (no worker is started unless a test starts a session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gowa_py.config import load_settings
from gowa_py.gateway.app import create_app

MakeClient = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """``await make_client(env, data_dir=None, **flags)``: a started test client.

    Each client gets its own data dir (the first one ``tmp_path/data``) unless one is
    given, e.g. to restart a gateway on the same data.
    """
    clients: list[TestClient] = []

    async def make(
        env: dict[str, str] | None = None, data_dir: Path | None = None, **flags: Any
    ) -> TestClient:
        folder = data_dir or tmp_path / ("data" if not clients else f"data{len(clients)}")
        client = TestClient(TestServer(create_app(load_settings(flags, env or {}), folder)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
