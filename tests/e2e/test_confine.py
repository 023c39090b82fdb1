"""Workers read and write only inside their own session folder and what they need
(Landlock), and their files are private (umask 077); skipped with the kernel's reason
where Landlock is unavailable. The uid layer: tests/integration/test_confinement.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import new_phone, pair
from tests.procs import ROOT
from workers.system.confine import Unsupported, abi_version

PROBE = """
import json, mimetypes, pathlib, sqlite3, ssl, sys, tempfile
from gowa_py.protocol import WorkerConfig
from workers.system.confine import confine
session, elsewhere = map(pathlib.Path, sys.argv[1:3])
config = WorkerConfig(session_id="a", session_dir=str(session), command_endpoint="ipc:///c",
                      event_endpoint="ipc:///e", parent_pid=1)
result = {"confined": confine(config)}
(session / "inside.txt").write_text("x")
db = sqlite3.connect(session / "x.db"); db.execute("create table t (a)"); db.commit()
result["temp"] = tempfile.mkstemp()[1]
for name, action in {
    "other_session": lambda: (elsewhere / "evil").write_text("x"),
    "parent": lambda: (session.parent / "evil").write_text("x"),
    "tmp": lambda: open("/tmp/gowa-confine-evil", "w").write("x"),
    "mkdir": lambda: (elsewhere / "d").mkdir(),
    "delete": lambda: (elsewhere / "keep").unlink(),
    "rename_out": lambda: (session / "inside.txt").rename(elsewhere / "moved"),
    "read_other": lambda: (elsewhere / "keep").read_text(),
    "list_other": lambda: list(elsewhere.iterdir()),
    "read_parent": lambda: list(session.parent.iterdir()),
    "read_etc": lambda: open("/etc/passwd").read(),
    "read_init_environ": lambda: open("/proc/1/environ").read(),
}.items():
    try:
        action()
        result[name] = "written"
    except PermissionError:
        result[name] = "denied"
open("/dev/null", "w").write("x")
ssl.create_default_context()
result["mime"] = mimetypes.guess_extension("image/png")
result["status"] = open("/proc/self/status").read().count("NoNewPrivs:\\t1")
result["capabilities"] = [l for l in open("/proc/self/status") if l.startswith("CapEff")]
result["mode"] = oct((session / "inside.txt").stat().st_mode & 0o777)
print(json.dumps(result))
"""


def _reason() -> str | None:
    try:
        abi_version()
    except Unsupported as exc:
        return str(exc)
    return None


def test_confined_process_cannot_read_or_write_outside_its_folder(tmp_path):
    if (reason := _reason()) is not None:
        pytest.skip(reason)
    session, elsewhere = tmp_path / "sessions" / "a", tmp_path / "sessions" / "b"
    session.mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keys")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(session), str(elsewhere)],
        capture_output=True, text=True, cwd=ROOT, timeout=30, check=True,
    ).stdout  # fmt: skip
    result = json.loads(out)
    assert result["confined"] is True
    assert result["temp"].startswith(str(session / "tmp"))
    for name in (
        "other_session", "parent", "tmp", "mkdir", "delete", "rename_out",
        "read_other", "list_other", "read_parent", "read_etc", "read_init_environ",
    ):  # fmt: skip
        assert result[name] == "denied", (name, result)
    assert (elsewhere / "keep").read_text() == "keys"
    assert not Path("/tmp/gowa-confine-evil").exists()
    assert result["status"] == 1
    assert result["capabilities"] == ["CapEff:\t0000000000000000\n"]
    assert result["mode"] == "0o600"
    assert result["mime"] == ".png"  # mimetypes reads its tables from /etc


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["zygote", "subprocess"])
def test_real_workers_run_confined(gateway_factory, sandbox, open_tmp, mode):
    if (reason := _reason()) is not None:
        pytest.skip(reason)
    gateway = gateway_factory(
        env={"GOWA_WORKER_MODE": mode}, args=["--sandbox", sandbox.url], data_dir=open_tmp / "d"
    )
    phone = new_phone(sandbox, f"1999{len(mode)}00001", "Confined")
    pair(gateway, sandbox, "boxed", phone)
    pid = gateway.session("boxed")["worker"]["pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert "NoNewPrivs:\t1" in status
    assert "\nUid:\t0\t" not in status  # its own uid, reaching the sandbox CA
    log = (gateway.data_dir / "sessions" / "boxed" / "worker.log").read_text()
    assert "file-system reads and writes confined to" in log
    store = gateway.data_dir / "sessions" / "boxed" / "whatsmeow.db"
    assert store.stat().st_mode & 0o077 == 0
