"""The environment the Go runtime of a worker is exec'd with (supervisor/process.py)."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from gowa_py import protocol as p
from gowa_py.config import Settings
from gowa_py.protocol import TIMER_SLACK_ENV
from gowa_py.supervisor.workerenv import runtime_env
from workers.system import timerslack
from workers.system.prctl import prctl


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


def test_workers_sleep_with_the_timer_slack_of_the_settings() -> None:
    assert runtime_env(None, None)[TIMER_SLACK_ENV] == "5000000"
    assert runtime_env(Settings(worker_timer_slack_ms=0.5), None)[TIMER_SLACK_ENV] == "500000"
    assert TIMER_SLACK_ENV not in runtime_env(Settings(worker_timer_slack_ms=0), None)


def test_the_worker_side_sets_its_thread_s_timer_slack(monkeypatch) -> None:
    """``timerslack.apply`` in a thread of its own: the slack is per thread."""
    seen: list[int | None] = []

    def run() -> None:
        seen.append(timerslack.apply())
        with open(f"/proc/{threading.get_native_id()}/timerslack_ns") as value:
            seen.append(int(value.read()))

    monkeypatch.setenv(TIMER_SLACK_ENV, "2000000")
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [2_000_000, 2_000_000]
    monkeypatch.delenv(TIMER_SLACK_ENV)
    assert timerslack.apply() is None


def test_a_refused_prctl_is_an_oserror_with_its_errno() -> None:
    with pytest.raises(OSError) as refused:
        prctl(0x7FFF, 0)  # no such option
    assert refused.value.errno == errno.EINVAL
