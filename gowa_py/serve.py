"""``gowa serve``: logging, the data-dir lock, the sandbox link, and the aiohttp server."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import resource
import sys
from pathlib import Path

import uvloop

from gowa_py import __version__, secretenv
from gowa_py.config import SECRET_ENV, Settings
from gowa_py.errors import GowaError
from gowa_py.gateway import httpserver
from gowa_py.gateway.app import create_app
from gowa_py.gateway.sandbox import fetch_sandbox_config
from gowa_py.protocol import SandboxConfig

log = logging.getLogger("gowa")


class DataDirBusy(GowaError):
    pass


def lock_data_dir(data_dir: Path) -> int:
    """One gateway per data dir: two would fight over the same workers and files."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "gowa.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise DataDirBusy(f"another gateway is already using {data_dir}") from exc
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def raise_fd_limit() -> tuple[int, int]:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard one; returns (before, after).

    The soft limit is often 1024, a default kept for ``select()``, which nothing here
    uses (asyncio and ZeroMQ poll with epoll). Each running session costs the gateway a
    few descriptors (its worker's sockets and pidfd, its outbox while busy), and every
    client connection one more; running out makes ``accept()`` fail and ``/healthz``
    with it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft >= hard:
        return soft, soft
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target


def serve(settings: Settings) -> None:
    # The settings hold the credentials now; nothing else may find them.
    secretenv.forget(SECRET_ENV)
    secretenv.undumpable()
    configure_logging(settings.log_level)
    data_dir = Path(settings.data_dir).resolve()
    lock_data_dir(data_dir)
    host, port = settings.bind_host, settings.port
    log.info("gowa-py %s, data dir %s", __version__, data_dir)
    before, after = raise_fd_limit()
    if after != before:
        log.info("open-file limit raised from %d to %d (the hard limit)", before, after)
    else:
        log.info("open-file limit %d", after)
    # A running session holds 3 descriptors (docs/benchmarks.md), an open outbox 3 more.
    needed = 3 * settings.max_sessions + 3 * settings.webhook_open_outboxes + 256
    if settings.max_sessions and after < needed:
        log.warning(
            "open-file limit %d is low for max_sessions = %d (about %d needed with all of "
            "them running); raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower "
            "max_sessions",
            after,
            settings.max_sessions,
            needed,
        )
    if not settings.auth_enabled:
        log.warning(
            "no GOWA_API_KEY or GOWA_BASIC_AUTH set: listening on 127.0.0.1 only "
            "(set credentials to accept other hosts)"
        )
        if settings.host and settings.host not in ("127.0.0.1", "localhost"):
            log.warning("ignoring host %s because no credentials are configured", settings.host)
    sandbox: SandboxConfig | None = None
    if settings.sandbox:
        sandbox = asyncio.run(fetch_sandbox_config(settings.sandbox, data_dir))
        log.warning("SANDBOX MODE: every session talks to the sandbox at %s", settings.sandbox)
    app = create_app(settings, data_dir, sandbox)
    log.info("listening on http://%s:%d (dashboard at /dashboard)", host, port)
    # uvloop: more requests per second at a lower latency (docs/benchmarks.md, "API
    # latency"). In-process test apps keep asyncio's loop.
    httpserver.run(
        app, host, port, settings.stop_timeout, settings.body_timeout, uvloop.new_event_loop()
    )
