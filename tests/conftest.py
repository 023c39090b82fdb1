from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import BACKENDS, Backend, ScratchDatabase
from tests.pgserver import PgServer
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
def open_tmp() -> Iterator[Path]:
    """A folder other users may pass through, for a data dir whose workers get a uid each
    (pytest's own folders are 0700, and any pytest run starting meanwhile makes them so
    again; a gateway there keeps its workers root, without capabilities)."""
    folder = Path(tempfile.mkdtemp(prefix="gowa-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def gateway(gateway_factory) -> Gateway:
    return gateway_factory()


@pytest.fixture(scope="session")
def test_database() -> Iterator[ScratchDatabase]:
    """This run's PostgreSQL database, made at first use and dropped at the end."""
    database = ScratchDatabase()
    yield database
    database.drop()


@pytest.fixture
def database() -> Iterator[ScratchDatabase]:
    """A PostgreSQL database of the test's own on the shared test server."""
    database = ScratchDatabase()
    yield database
    database.drop()


@pytest.fixture
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of the test's own: one a test may restart, and with room for
    more sessions' connections than the shared one has beside the other tests."""
    server = PgServer(max_connections=300).init()
    server.start()
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def storage_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each storage test runs once on SQLite and once on PostgreSQL."""
    database = request.getfixturevalue("test_database") if request.param != "sqlite" else None
    backend = Backend(request.param, tmp_path / "data", database)
    yield backend
    backend.close()
