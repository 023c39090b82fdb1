"""Worker processes killed or frozen while messages stream through them."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.procs import wait_until

pytestmark = pytest.mark.integration


def test_kill9_random_workers_during_stream(rig_factory, rng):
    """Injected: SIGKILL of a random worker (sender or receiver, at most twice each) four
    times while 120 messages stream over two pairs of sessions.

    Expected: the supervisor restarts each killed worker, the client's retried sends are
    accepted, every accepted message arrives once live and once as a webhook.
    """
    rig = rig_factory()
    rig.add_pairs(2)
    victims = rng.sample(rig.sessions() * 2, 4)
    killed: dict[str, int] = {}
    with rig.stream(120, "kill9"):
        for step, victim in zip((15, 40, 65, 90), victims, strict=True):
            rig.progress(step)
            pid = rig.gateway.wait_pid(victim, not_pid=killed.get(victim))
            os.kill(pid, signal.SIGKILL)
            killed[victim] = pid
    figures = rig.assert_nothing_lost(killed=frozenset(killed))
    for victim in killed:
        assert rig.gateway.session(victim)["worker"]["restarts"] >= 1
    print("kill -9", victims, figures)


def test_sigstop_receiver_briefly_and_sender_until_watchdog(rig_factory):
    """Injected: SIGSTOP of a receiving worker for 1.5 s (then SIGCONT), and SIGSTOP of a
    sending worker that is never continued, while 100 messages stream.

    Expected: the frozen receiver catches up when continued; the frozen sender's requests
    time out (503, retried by the client) until the health-ping watchdog kills and
    replaces it; nothing accepted is lost or duplicated.
    """
    rig = rig_factory(
        {"GOWA_HEALTH_INTERVAL": "1", "GOWA_HEALTH_TIMEOUT": "1", "GOWA_HEALTH_FAILURES": "3"}
    )
    first, second = rig.add_pairs(2)
    with rig.stream(100, "stop"):
        rig.progress(20)
        receiver_pid = rig.worker_pid(first.receiver)
        os.kill(receiver_pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)
        finally:
            os.kill(receiver_pid, signal.SIGCONT)
        rig.progress(50)
        frozen = rig.worker_pid(second.sender)
        os.kill(frozen, signal.SIGSTOP)
        wait_until(
            lambda: rig.gateway.session(second.sender)["worker"]["pid"] not in (None, frozen),
            30,
            what="the watchdog to replace the frozen sender",
        )
    figures = rig.assert_nothing_lost()
    assert figures["statuses"].get(503, 0) >= 1, figures
    print("sigstop", figures)
