"""How long a session's message handling waits while ``gowa backup`` copies its store.

    python scripts/bench_backup.py --messages 200000 --rate 200 --seconds 20

A writer process stores messages the way a worker does (the worker's own ``ChatsDb`` and
``ChatStore``: one transaction per message, a message event in the same commit) at
``--rate`` per second into a ``chats.db`` pre-filled with ``--messages`` messages with a
raw payload, and times every transaction. For the first quarter of ``--seconds`` nothing
else runs (the baseline); then the backup's copy (``gowa_py.archive.sqlite.copy_database``)
of that file runs again and again, once with the default page steps and once in a single
step. The longest and the 99th-percentile transaction of each phase are the pause. Then,
for comparison, the same stepped copy without the read transaction held across steps
(SQLite's backup API as documented): every commit of the writer restarts it. Last, the
time to export a session with that ``chats.db`` to an archive and to import it (checked
and unpacked).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gowa_py.archive.sqlite import STEP_PAGES, copy_database  # noqa: E402


def _fill(path: Path, messages: int) -> None:
    from workers.chatstore import ChatStore
    from workers.stores import sqlite_db

    db = sqlite_db(path)
    store = ChatStore(db)
    raw = os.urandom(600)
    with db.transaction():
        for n in range(messages):
            store.add_message(
                id=f"fill{n}",
                chat_jid=f"{n % 500}@s.whatsapp.net",
                sender_jid=f"{n % 500}@s.whatsapp.net",
                timestamp=time.time(),
                is_from_me=False,
                content=f"message {n} " * 8,
                raw=raw,
            )
    db.close()


def _writer(path: str, rate: float, seconds: float, out: mp.Queue) -> None:
    from workers.chatstore import ChatStore
    from workers.eventlog import EventLog
    from workers.stores import sqlite_db

    db = sqlite_db(Path(path))
    store, events = ChatStore(db), EventLog(db, "bench", 100000)
    raw = os.urandom(600)
    samples: list[tuple[float, float]] = []
    interval, deadline, n = 1.0 / rate, time.monotonic() + seconds, 0
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        begin = time.monotonic()
        with db.transaction():
            store.add_message(
                id=f"live{n}",
                chat_jid="1@s.whatsapp.net",
                sender_jid="1@s.whatsapp.net",
                timestamp=time.time(),
                is_from_me=False,
                content=f"live {n}",
                raw=raw,
            )
            events.append("message", {"id": f"live{n}"})
        samples.append((begin, time.monotonic() - begin))
        n += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    out.put(samples)


def _unheld_copy(source: Path, target: Path, seconds: float) -> dict[str, float]:
    """A stepped copy that does not hold a read transaction: how far it gets."""
    import sqlite3

    deadline = time.monotonic() + seconds
    seen: dict[str, float] = {"restarts": 0, "least_remaining": 1 << 62}
    last = [1 << 62]

    def progress(_status: int, remaining: int, _total: int) -> None:
        if remaining > last[0]:
            seen["restarts"] += 1
        last[0] = remaining
        seen["least_remaining"] = min(seen["least_remaining"], remaining)
        if time.monotonic() > deadline:
            raise TimeoutError

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    started = time.monotonic()
    try:
        src.backup(dst, pages=STEP_PAGES, progress=progress, sleep=0)
        seen["finished_s"] = round(time.monotonic() - started, 2)
    except TimeoutError:
        seen["finished_s"] = -1
    finally:
        src.close()
        dst.close()
    return seen


def _archive(tmp: Path, chats: Path) -> dict[str, float]:
    """How long an export (the archive written) and an import (checked and unpacked) of
    a session with this ``chats.db`` take, and the archive's size."""
    from gowa_py.archive import pack
    from gowa_py.archive import session as archive
    from gowa_py.models import SessionConfig
    from gowa_py.protocol import SessionState
    from gowa_py.registry import SessionRecord

    folder = tmp / "session"
    folder.mkdir()
    os.replace(chats, folder / "chats.db")
    record = SessionRecord(
        "bench", time.time(), "stopped", SessionState.STOPPED, time.time(), SessionConfig()
    )
    started = time.monotonic()
    archive.export_to_file(record, folder, tmp / "bench.tar.gz", source_live=False)
    exported = time.monotonic() - started
    started = time.monotonic()
    with (tmp / "bench.tar.gz").open("rb") as source:
        pack.unpack(source, tmp / "unpacked")
    return {
        "archive_mb": round((tmp / "bench.tar.gz").stat().st_size / 1e6, 1),
        "export_s": round(exported, 2),
        "import_check_and_unpack_s": round(time.monotonic() - started, 2),
    }


def _stats(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    pick = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    worst = ordered[-1]
    return {"n": len(ordered), "p99_ms": round(pick * 1000, 2), "max_ms": round(worst * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=24.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        chats = Path(tmp) / "chats.db"
        _fill(chats, args.messages)
        size_mb = chats.stat().st_size / 1e6
        queue: mp.Queue = mp.Queue()
        writer = mp.Process(target=_writer, args=(str(chats), args.rate, args.seconds, queue))
        writer.start()
        third = args.seconds / 4
        time.sleep(third)
        phases: dict[str, tuple[float, float, list[float]]] = {}
        for name, pages in (("steps", STEP_PAGES), ("one step", -1)):
            begin, copies = time.monotonic(), []
            while time.monotonic() - begin < third:
                started = time.monotonic()
                copy_database(chats, Path(tmp) / "copy.db", pages)
                copies.append(time.monotonic() - started)
                (Path(tmp) / "copy.db").unlink()
            phases[name] = (begin, time.monotonic(), copies)
        unheld = _unheld_copy(chats, Path(tmp) / "unheld.db", third / 2)
        samples = queue.get()
        writer.join()
        archive = _archive(Path(tmp), chats)
    first = min(begin for begin, _, _ in phases.values())
    result = {
        "chats_db_mb": round(size_mb, 1),
        "rate": args.rate,
        "baseline": _stats([d for at, d in samples if at < first]),
    }
    for name, (begin, end, copies) in phases.items():
        during = [d for at, d in samples if begin <= at < end]
        result[f"backup, {name}"] = {
            **_stats(during),
            "copies": len(copies),
            "copy_s": round(sum(copies) / len(copies), 2),
        }
    result["steps without a held read transaction"] = unheld
    result["session archive"] = archive
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
