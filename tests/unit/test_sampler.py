"""The worker sampler reads PSS/USS (expensive) only every ``pss_interval`` per worker."""

import os

import psutil

from gowa_py.supervisor.sampler import Sampler


def test_pss_is_read_once_per_interval(monkeypatch):
    reads: list[int] = []
    full_info = psutil.Process.memory_full_info

    def counting(self):
        reads.append(self.pid)
        return full_info(self)

    monkeypatch.setattr(psutil.Process, "memory_full_info", counting)
    now = [1000.0]
    sampler = Sampler(pss_interval=30.0, clock=lambda: now[0])
    pid = os.getpid()

    first = sampler.sample([pid])[pid]
    assert reads == [pid] and first.pss > 0 and first.uss > 0 and first.rss > 0

    now[0] += 5
    second = sampler.sample([pid])[pid]
    assert reads == [pid], "PSS read again before its interval"
    assert (second.pss, second.uss) == (first.pss, first.uss)
    assert second.rss > 0

    now[0] += 30  # past the first, shortened (15-30 s) interval
    sampler.sample([pid])
    assert reads == [pid, pid]
    now[0] += 29
    sampler.sample([pid])
    assert len(reads) == 2
    now[0] += 1
    sampler.sample([pid])
    assert len(reads) == 3

    # A worker that goes away is forgotten; one that comes back is read at once.
    assert sampler.sample([]) == {}
    sampler.sample([pid])
    assert len(reads) == 4


def test_zero_interval_reads_every_time(monkeypatch):
    sampler = Sampler(pss_interval=0.0)
    calls = []
    full_info = psutil.Process.memory_full_info
    monkeypatch.setattr(
        psutil.Process, "memory_full_info", lambda self: calls.append(1) or full_info(self)
    )
    for _ in range(3):
        sampler.sample([os.getpid()])
    assert len(calls) == 3


def test_dead_pid_is_skipped():
    sampler = Sampler(pss_interval=30.0)
    process = psutil.Popen(["true"])
    process.wait()
    assert sampler.sample([process.pid]) == {}
