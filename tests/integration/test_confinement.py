"""A compromised worker against the OS boundary: it runs as the session's own uid, under
Landlock, and the gateway keeps no secret in its environment.

The hostile code runs in a process that confines itself with the real worker's own
configuration (taken from the real worker of a real gateway) through the very function
the worker calls, ``workers.system.confine.confine``; then it tries to read what it must not.
No WhatsApp is reachable here: workers sit in DISCONNECTED, their stores created.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.procs import ROOT, wait_until

pytestmark = pytest.mark.integration

PROBE = """
import json, os, sys
from pathlib import Path
from gowa_py import protocol as p
from workers.system.confine import confine, drop_privileges
config = p.decode_config(os.environ["GOWA_WORKER_CONFIG"])
if sys.argv[1] == "uid-only":
    drop_privileges(config.run_as)
else:
    confine(config)
result = {"uid": os.getuid(), "groups": os.getgroups()}
for name, path in json.loads(sys.argv[2]).items():
    try:
        with open(path, "rb") as handle:
            handle.read(16)
        result[name] = "read"
    except OSError as exc:
        result[name] = type(exc).__name__
print(json.dumps(result))
"""


def _secrets() -> dict[str, str]:
    return {
        "GOWA_API_KEY": "key-" + secrets.token_hex(8),
        "GOWA_BASIC_AUTH": "admin:pw-" + secrets.token_hex(8),
        "GOWA_WEBHOOK_SECRET": "hook-" + secrets.token_hex(8),
    }


def _start(gateway, session_id: str) -> int:
    status, body = gateway.http.post("/api/sessions", {"session_id": session_id, "start": True})
    assert status == 201, body
    folder = gateway.data_dir / "sessions" / session_id
    wait_until(lambda: (folder / "whatsmeow.db").exists(), 60, what="whatsmeow.db")
    return gateway.wait_pid(session_id)


def _config(pid: int) -> str:
    """A subprocess-mode worker's configuration, as its environment holds it."""
    return psutil.Process(pid).environ()["GOWA_WORKER_CONFIG"]


def _probe(mode: str, config: str, cwd: Path, targets: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, json.dumps(targets)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "GOWA_WORKER_CONFIG": config},
        cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.splitlines()[-1])


def test_gateway_environment_holds_no_secret(gateway_factory, open_tmp):
    values = _secrets()
    gateway = gateway_factory(env=values, data_dir=open_tmp / "data")
    _start(gateway, "a")
    for process in [psutil.Process(gateway.pid), *gateway.descendants()]:
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        for name, value in values.items():
            assert value.encode() not in environ, (process.name(), name)
    # The credentials still work: they live in the settings.
    assert gateway.http.get("/api/sessions")[0] == 200


def test_each_worker_runs_as_its_own_uid_without_capabilities(gateway_factory, open_tmp):
    gateway = gateway_factory(env={"GOWA_WORKER_MODE": "zygote"}, data_dir=open_tmp / "data")
    pids = {name: _start(gateway, name) for name in ("a", "b")}
    uids = {}
    for name, pid in pids.items():
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        uids[name] = int(fields["Uid"].split()[0])
        assert fields["Uid"].split() == [str(uids[name])] * 4
        assert int(fields["CapEff"], 16) == 0 and int(fields["CapPrm"], 16) == 0
        assert fields["NoNewPrivs"].strip() == "1"
        folder = gateway.data_dir / "sessions" / name
        assert folder.stat().st_uid == uids[name]
        assert folder.stat().st_mode & 0o777 == 0o700
    assert 0 not in uids.values()
    assert uids["a"] != uids["b"]


@pytest.mark.parametrize("layer", ["worker", "uid-only"])
def test_hostile_worker_cannot_read_other_sessions_registry_or_gateway(
    gateway_factory, open_tmp, layer
):
    gateway = gateway_factory(
        env={"GOWA_WORKER_MODE": "subprocess", **_secrets()}, data_dir=open_tmp / "data"
    )
    pid_a, pid_b = _start(gateway, "a"), _start(gateway, "b")
    sessions = gateway.data_dir / "sessions"
    targets = {
        "own_store": str(sessions / "a" / "whatsmeow.db"),
        "other_store": str(sessions / "b" / "whatsmeow.db"),
        "other_chats": str(sessions / "b" / "chats.db"),
        "registry": str(gateway.data_dir / "gowa.db"),
        "gateway_environ": f"/proc/{gateway.pid}/environ",
        "gateway_mem_maps": f"/proc/{gateway.pid}/maps",
        "other_worker_environ": f"/proc/{pid_b}/environ",
    }
    result = _probe(layer, _config(pid_a), sessions / "a", targets)
    assert result["uid"] == psutil.Process(pid_a).uids().real != 0
    assert result["own_store"] == "read"
    for name in targets.keys() - {"own_store"}:
        assert result[name] == "PermissionError", (name, result)
