"""Workers forked from the zygote: isolation, zygote restarts, no orphans, and the fallback.

No WhatsApp is reachable here, so workers sit in DISCONNECTED retrying their dial.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from tests.procs import find_workers, wait_until

pytestmark = pytest.mark.integration


def _create(gateway, session_id: str) -> None:
    status, body = gateway.http.post("/api/sessions", {"session_id": session_id, "start": True})
    assert status == 201, body


def _zygotes(gateway) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(gateway.pid).children():
        try:
            if "workers.zygote" in child.cmdline() and child.status() != "zombie":
                found.append(child)
        except psutil.Error:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_are_forked_from_the_zygote_and_isolated(gateway):
    for name in ("a", "b", "c"):
        _create(gateway, name)
    pids = {name: gateway.wait_pid(name) for name in ("a", "b", "c")}
    [zygote] = _zygotes(gateway)
    for pid in pids.values():
        assert psutil.Process(pid).ppid() == zygote.pid
    gateway.wait_status("a", {"DISCONNECTED"})
    assert "web.whatsapp.com" in (gateway.data_dir / "sessions" / "a" / "worker.log").read_text()

    # kill -9 of one worker: it comes back with a new pid, nobody else notices.
    os.kill(pids["a"], signal.SIGKILL)
    new_a = gateway.wait_pid("a", not_pid=pids["a"], timeout=20)
    assert psutil.Process(new_a).ppid() == zygote.pid
    assert gateway.session("b")["worker"]["pid"] == pids["b"]
    assert gateway.session("c")["worker"]["pid"] == pids["c"]
    assert gateway.session("b")["worker"]["restarts"] == 0

    # kill -9 of the zygote: running workers stay up, a new zygote serves new sessions.
    zygote.kill()
    new_zygote = wait_until(
        lambda: [z for z in _zygotes(gateway) if z.pid != zygote.pid], 15, what="a new zygote"
    )[0]
    assert _alive(pids["b"]) and _alive(pids["c"])
    assert gateway.session("b")["worker"]["pid"] == pids["b"]
    _create(gateway, "d")
    assert psutil.Process(gateway.wait_pid("d")).ppid() == new_zygote.pid

    # A worker orphaned by the old zygote is still watched: its death is noticed.
    os.kill(pids["b"], signal.SIGKILL)
    assert gateway.wait_pid("b", not_pid=pids["b"], timeout=20) != pids["b"]


def test_gateway_sigkill_takes_zygote_and_workers_along(gateway):
    for n in range(3):
        _create(gateway, f"w{n}")
    pids = [gateway.wait_pid(f"w{n}") for n in range(3)]
    [zygote] = _zygotes(gateway)
    # One worker whose zygote has died meanwhile must go too.
    zygote.kill()
    wait_until(lambda: [z for z in _zygotes(gateway) if z.pid != zygote.pid], 15, what="zygote")
    [new_zygote] = _zygotes(gateway)
    started = time.monotonic()
    gateway.stop(signal.SIGKILL)
    wait_until(
        lambda: not any(_alive(pid) for pid in [*pids, new_zygote.pid]),
        10,
        what="zygote and workers to exit",
    )
    assert time.monotonic() - started < 10
    assert not find_workers(gateway.data_dir)


def test_subprocess_mode_starts_direct_children(gateway_factory):
    gateway = gateway_factory(env={"GOWA_WORKER_MODE": "subprocess"})
    _create(gateway, "plain")
    pid = gateway.wait_pid("plain")
    assert psutil.Process(pid).ppid() == gateway.pid
    assert not _zygotes(gateway)
    gateway.stop(signal.SIGKILL)
    wait_until(lambda: not _alive(pid), 10, what="worker to exit")


def _merge_any(pid: int) -> bool:
    """Whether the kernel treats all of a process's memory as mergeable (ksm_stat, 6.4+)."""
    with open(f"/proc/{pid}/ksm_stat") as stat:
        return "ksm_merge_any: yes" in stat.read()


needs_ksm = pytest.mark.skipif(
    not os.path.exists("/proc/self/ksm_stat"), reason="this kernel has no per-process KSM"
)


@needs_ksm
@pytest.mark.parametrize("setting", ["auto", "off"])
def test_workers_opt_in_to_same_page_merging_unless_off(gateway_factory, setting):
    gateway = gateway_factory(env={"GOWA_KSM": setting})
    _create(gateway, "m")
    worker = gateway.wait_pid("m")
    [zygote] = _zygotes(gateway)
    assert _merge_any(zygote.pid) is (setting == "auto")
    assert _merge_any(worker) is (setting == "auto")
    assert not _merge_any(gateway.pid)  # only the workers' memory is offered to ksmd


def _timer_slacks(pid: int) -> set[int]:
    """The timer slack (ns) of each thread of ``pid``."""
    slacks = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{tid}/timerslack_ns") as value:
            slacks.add(int(value.read()))
    return slacks


@pytest.mark.parametrize(
    ("mode", "slack_ms"), [("zygote", None), ("subprocess", None), ("zygote", "0")]
)
def test_every_worker_thread_sleeps_with_the_wide_timer_slack(gateway_factory, mode, slack_ms):
    env = {"GOWA_WORKER_MODE": mode}
    if slack_ms is not None:
        env["GOWA_WORKER_TIMER_SLACK_MS"] = slack_ms
    gateway = gateway_factory(env=env)
    _create(gateway, "t")
    pid = gateway.wait_pid("t")
    gateway.wait_status("t", {"DISCONNECTED"})  # Go's threads are running
    assert psutil.Process(pid).num_threads() > 4
    kernel_default = _timer_slacks(os.getpid())
    assert len(kernel_default) == 1
    assert _timer_slacks(gateway.pid) == kernel_default  # the gateway's own stays
    expected = kernel_default if slack_ms == "0" else {5_000_000}
    assert _timer_slacks(pid) == expected


@pytest.mark.parametrize("mode", ["zygote", "subprocess"])
def test_workers_hold_no_gateway_fd_and_the_zygote_no_zombie(gateway_factory, mode):
    gateway = gateway_factory(env={"GOWA_WORKER_MODE": mode})
    _create(gateway, "a")
    pid = gateway.wait_pid("a")
    gateway.wait_status("a", {"DISCONNECTED"})
    opened = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert str(gateway.log_path) not in opened
    assert not any(path.startswith(str(gateway.data_dir / "gowa.")) for path in opened), opened
    if mode == "zygote":
        [zygote] = _zygotes(gateway)
        zombies = [c for c in zygote.children() if c.status() == psutil.STATUS_ZOMBIE]
        assert zombies == []
