"""One session's disk fills up while messages stream to it and to others."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk() -> Iterator:
    """Mount a small tmpfs on a folder; always unmounted afterwards (lazily if still busy)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str = "8m") -> Path:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


def test_disk_full_on_one_session(rig_factory, small_disk):
    """Injected: the file system of one receiving session (a small tmpfs mounted on its
    folder) fills up completely while two pairs exchange messages.

    Expected: that session fails clearly (FAILED with a "disk full" error, as a
    ``session.status`` event) before it can lose anything, the other pair carries on
    untouched; messages sent to the full session meanwhile wait on the WhatsApp side and
    all arrive once space is freed and the session is started again.
    """
    rig = rig_factory({"GOWA_SAMPLE_INTERVAL": "0.5", "GOWA_MIN_FREE_DISK_MB": "1"})
    full: list[Path] = []

    def before_pair(rx: str) -> None:
        if not full:
            full.append(small_disk(rig.data_dir / "sessions" / rx))

    a, b = rig.add_pairs(2, before_pair=before_pair)
    with rig.stream(20, "before"):
        pass
    filler = _fill(full[0])
    failed = rig.gateway.wait_status(a.receiver, {"FAILED"}, timeout=15)
    assert failed["error"].startswith("disk full"), failed
    rig.watchers[0].wait(
        lambda e: (
            e["event"] == "session.status"
            and e["session_id"] == a.receiver
            and (e["payload"].get("error") or "").startswith("disk full")
        ),
        5,
        "a session.status event naming the full disk",
    )
    with rig.stream(40, "full"):
        pass
    assert rig.gateway.session(b.receiver)["status"] == "CONNECTED"
    assert rig.gateway.session(a.sender)["status"] == "CONNECTED"
    filler.unlink()
    status, body = rig.gateway.http.post(f"/api/sessions/{a.receiver}/start")
    assert status == 200, body
    rig.gateway.wait_status(a.receiver, {"CONNECTED"})
    figures = rig.assert_nothing_lost()
    print("disk full", figures)


def test_creating_a_session_on_a_full_disk_is_507(gateway_factory, small_disk, tmp_path):
    """The gateway's own data dir is full: creating a session answers a clear 507 envelope
    (it was a 500 with a traceback), and works again once there is room."""
    data = small_disk(tmp_path / "data", "4m")  # its log is written next to it, not on it
    gateway = gateway_factory(data_dir=data, env={"GOWA_MIN_FREE_DISK_MB": "0"})
    filler = _fill(data)
    for n in range(3):
        status, body = gateway.http.post("/api/sessions", {"session_id": f"s{n}", "start": False})
        assert (status, body["code"]) == (507, "INSUFFICIENT_STORAGE"), body
    assert gateway.http.get("/healthz")[0] == 200
    filler.unlink()
    status, body = gateway.http.post("/api/sessions", {"session_id": "s9", "start": False})
    assert status == 201, body
    assert "Traceback" not in gateway.log_path.read_text()
