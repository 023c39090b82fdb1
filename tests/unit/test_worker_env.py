"""The environment the Go runtime of a worker is exec'd with (supervisor/process.py)."""

from __future__ import annotations

from pathlib import Path

from gowa_py import protocol as p
from gowa_py.supervisor.process import runtime_env


def test_a_sandbox_worker_trusts_the_sandbox_ca_and_nothing_else(tmp_path: Path) -> None:
    ca = tmp_path / "sandbox" / "ca.pem"
    sandbox = p.SandboxConfig(proxy="http://127.0.0.1:1", ca_file=str(ca), root_key="00" * 32)
    env = runtime_env(None, sandbox)
    assert env["SSL_CERT_FILE"] == str(ca)
    # Not the system certificate folders, which Go would parse in every worker.
    assert env["SSL_CERT_DIR"] == str(ca.parent)


def test_a_production_worker_keeps_the_system_trust_store() -> None:
    env = runtime_env(None, None)
    assert "SSL_CERT_FILE" not in env and "SSL_CERT_DIR" not in env
