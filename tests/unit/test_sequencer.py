"""The event sequencer against a real registry and a worker log kept in a list."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from gowa_py import protocol as p
from gowa_py.models import SessionConfig
from gowa_py.storage.interfaces import RegistryStorage
from gowa_py.supervisor.sequencer import EventSequencer

PID = 4242


class Worker:
    """A worker's durable event log, as ReplayEvents answers it; ``down`` refuses."""

    def __init__(self, epoch: str, count: int) -> None:
        self.epoch = epoch
        self.log = [event(seq, epoch) for seq in range(1, count + 1)]
        self.down = False
        self.fetches: list[int] = []

    async def fetch(self, session_id: str, after_seq: int, limit: int) -> list[p.Event]:
        self.fetches.append(after_seq)
        if self.down:
            raise ConnectionError("worker going away")
        return [e for e in self.log if e.seq > after_seq][:limit]


def event(seq: int, epoch: str) -> p.Event:
    return p.Event(
        id=f"{epoch}-{seq}", session_id="s", name="message", timestamp=0.0, payload={},
        seq=seq, epoch=epoch,
    )  # fmt: skip


class Harness:
    def __init__(self, registry: RegistryStorage, worker: Worker, batch: int = 1000) -> None:
        self.registry = registry
        self.worker = worker
        self.applied: list[str] = []
        self.replaced: list[str] = []
        self.fail_on: set[str] = set()
        self.pid: int | None = PID
        self.sequencer = EventSequencer(
            registry, self.fetch, self.apply, self.on_replaced, lambda _: self.pid, 0.01, batch
        )

    async def fetch(self, session_id: str, after_seq: int, limit: int) -> list[p.Event]:
        return await self.worker.fetch(session_id, after_seq, limit)

    async def apply(self, e: p.Event) -> None:
        if e.id in self.fail_on:
            self.fail_on.discard(e.id)
            raise RuntimeError("listener failed")
        self.applied.append(e.id)
        self.registry.set_event_seq(e.session_id, e.seq)

    async def on_replaced(self, session_id: str, reason: str) -> None:
        self.replaced.append(reason)


@pytest.fixture
def registry(storage_backend):
    """The sequencer against a real registry, on each storage backend."""
    registry = storage_backend.registry()
    registry.create("s", SessionConfig(), "running")
    return registry


def ids(epoch: str, *seqs: int) -> list[str]:
    return [f"{epoch}-{seq}" for seq in seqs]


async def test_events_before_the_hello_wait_for_the_catch_up(registry):
    worker = Worker("e1", 3)
    h = Harness(registry, worker)
    await h.sequencer.on_event(worker.log[0])
    assert h.applied == []
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    assert h.applied == ids("e1", 1, 2, 3)
    assert registry.get("s").event_epoch == "e1"


async def test_out_of_order_duplicates_and_gaps_apply_each_event_once_in_order(registry):
    worker = Worker("e1", 0)
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    worker.log = [event(seq, "e1") for seq in range(1, 7)]
    for seq in (1, 1, 4, 2, 3, 6, 5, 6):
        await h.sequencer.on_event(worker.log[seq - 1])
    assert h.applied == ids("e1", 1, 2, 3, 4, 5, 6)
    assert registry.get("s").last_event_seq == 6


async def test_a_gap_that_cannot_be_fetched_holds_the_later_event_until_the_retry(registry):
    worker = Worker("e1", 1)
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    worker.log = [event(seq, "e1") for seq in range(1, 4)]
    worker.down = True
    await h.sequencer.on_event(worker.log[2])
    assert h.applied == ids("e1", 1)  # 3 not applied over the missing 2
    assert h.sequencer.stalled == {"s"}
    worker.down = False
    h.sequencer.start()
    try:
        async with asyncio.timeout(5):
            while h.sequencer.stalled:
                await asyncio.sleep(0.01)
    finally:
        await h.sequencer.close()
    assert h.applied == ids("e1", 1, 2, 3)


async def test_a_failed_listener_is_retried_from_the_log(registry):
    worker = Worker("e1", 0)
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    worker.log = [event(1, "e1")]
    h.fail_on.add("e1-1")
    with pytest.raises(RuntimeError):
        await h.sequencer.on_event(worker.log[0])
    assert h.sequencer.stalled == {"s"}
    await h.sequencer.retry()
    assert h.applied == ids("e1", 1) and h.sequencer.stalled == set()


async def test_no_retry_for_a_worker_whose_log_was_not_checked(registry):
    worker = Worker("e1", 2)
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    h.sequencer.stalled.add("s")
    h.pid = PID + 1  # a new worker, not said hello yet
    worker.fetches.clear()
    await h.sequencer.retry()
    assert worker.fetches == [] and h.sequencer.stalled == {"s"}


async def test_a_replaced_log_is_followed_from_its_start_and_old_events_dropped(registry):
    old = Worker("e1", 5)
    h = Harness(registry, old)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    assert registry.get("s").last_event_seq == 5
    new = Worker("e2", 3)  # chats.db replaced: numbering restarts below the cursor
    h.worker = new
    await h.sequencer.hello("s", PID + 1, p.EventLogIdentity(epoch="e2", start_seq=1))
    h.pid = PID + 1
    assert h.replaced == ["the event log is a different one"]
    assert h.applied == ids("e1", 1, 2, 3, 4, 5) + ids("e2", 2, 3)
    await h.sequencer.on_event(event(6, "e1"))  # late from the old worker's log
    assert h.applied[-1] == "e2-3"


async def test_a_rewound_log_is_followed_and_a_registry_without_epoch_adopts_the_log(registry):
    registry.set_event_seq("s", 4)  # a cursor from before logs had an identity
    worker = Worker("e1", 6)
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=4))
    assert h.replaced == [] and h.applied == ids("e1", 5, 6)
    assert registry.get("s").event_epoch == "e1"
    worker.log = worker.log[:2]  # restored from a backup: the same log, behind the cursor
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=2))
    assert h.replaced == ["the event log was rewound from 6 to 2"]
    assert registry.get("s").last_event_seq == 2


async def test_catch_up_fetches_in_batches(registry):
    worker = Worker("e1", 7)
    h = Harness(registry, worker, batch=3)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    assert h.applied == ids("e1", *range(1, 8))
    assert worker.fetches == [0, 3, 6]


async def test_a_replayed_event_of_another_session_is_dropped(registry):
    worker = Worker("e1", 2)
    foreign = msgspec.structs.replace(worker.log[0], session_id="other", id="other-1")
    worker.log = [foreign, *worker.log]
    h = Harness(registry, worker)
    await h.sequencer.hello("s", PID, p.EventLogIdentity(epoch="e1", start_seq=0))
    assert h.applied == ids("e1", 1, 2)
