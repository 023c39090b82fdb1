"""What one busy session may take: its worker.log stays bounded while it runs."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import new_phone, pair, session_dir
from tests.procs import wait_until

pytestmark = pytest.mark.integration

LOG_MAX_MB = 0.05
LOG_MAX = int(LOG_MAX_MB * 1024 * 1024)


def _stat(path: Path) -> os.stat_result | None:
    """None for the instant between a rotation's rename and the new file."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def test_worker_log_is_rotated_by_size_while_the_worker_runs(gateway_factory, sandbox):
    gateway = gateway_factory(
        env={
            "GOWA_WORKER_LOG_LEVEL": "DEBUG",
            "GOWA_WORKER_LOG_MAX_MB": str(LOG_MAX_MB),
            "GOWA_RATE_LIMIT": "0",
        },
        args=["--sandbox", sandbox.url],
    )
    talker, peer = (
        new_phone(sandbox, "15550007001", "Talker"),
        new_phone(sandbox, "15550007002", "Peer"),
    )
    pair(gateway, sandbox, "talker", talker)
    pid = gateway.session("talker")["worker"]["pid"]
    folder = session_dir(gateway, "talker")
    rotations, last = 0, None
    sizes: list[tuple[int, int]] = []
    for i in range(400):
        status, body = gateway.http.post(
            "/api/talker/send/message", {"phone": peer, "message": f"line {i} " + "x" * 200}
        )
        assert status == 200, body
        names = {path.name for path in folder.glob("worker.log*")}
        assert names <= {"worker.log", "worker.log.1"}, names
        stats = [_stat(folder / name) for name in ("worker.log", "worker.log.1")]
        sizes.append(tuple(stat.st_size if stat else 0 for stat in stats))
        for name, size in zip(("worker.log", "worker.log.1"), sizes[-1], strict=True):
            if size > LOG_MAX * 1.05:  # counted in characters: a little slack
                # Only a record longer than the limit (a prekey upload at DEBUG) may
                # pass it, alone in its file.
                with contextlib.suppress(FileNotFoundError):  # rotated meanwhile
                    assert (folder / name).read_bytes().count(b"\n") == 1, (name, size)
        if stats[1] is not None and (stats[1].st_ino, stats[1].st_mtime_ns) != last:
            # Inode numbers alternate between the two files; the pair changes each time.
            rotations += last is None or stats[1].st_ino != last[0]
            last = (stats[1].st_ino, stats[1].st_mtime_ns)
        if rotations >= 3:
            break
    assert rotations >= 3, f"worker.log was rotated {rotations} times: {sizes[-5:]}"
    assert gateway.session("talker")["worker"]["pid"] == pid  # rotated while it ran
    wait_until(lambda: (folder / "worker.log").stat().st_size > 0, 5, what="logging goes on")
