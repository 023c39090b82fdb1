"""How long ``gowa import gowa`` takes for a GoWA installation with a long history.

    python scripts/bench_import_gowa.py --store data/sessions/x/whatsmeow.db --messages 200000

``--store`` is a whatsmeow store neonize made (a paired session's ``whatsmeow.db``); it
becomes GoWA's ``storages/whatsapp.db``. GoWA's ``chatstorage.db`` (v9's tables, as
tests/e2e/test_import_gowa.py builds them) gets ``--messages`` messages of that device in
``--chats`` chats, every tenth a document with its media keys. The import runs into a
fresh data dir, as the command does, and the script prints the time of each phase.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gowa_py.importers.command import ImportOptions, import_gowa  # noqa: E402
from tests.e2e.test_import_gowa import GOWA_CHATSTORAGE_MIGRATIONS, gowa_time  # noqa: E402


def _history(path: Path, device: str, messages: int, chats: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in GOWA_CHATSTORAGE_MIGRATIONS:
        db.execute(statement)
    start = time.time() - messages
    with db:
        db.executemany(
            "INSERT INTO chats (jid, device_id, name, last_message_time) VALUES (?, ?, ?, ?)",
            [
                (f"1555{n:07d}@s.whatsapp.net", device, f"chat {n}", gowa_time(start))
                for n in range(chats)
            ],
        )
        db.executemany(
            "INSERT INTO messages (id, chat_jid, device_id, sender, content, timestamp, "
            "is_from_me, media_type, filename, url, media_key, file_sha256, file_enc_sha256, "
            "file_length, direct_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"3EB0{n:016X}",
                    f"1555{n % chats:07d}@s.whatsapp.net",
                    device,
                    device if n % 2 else f"1555{n % chats:07d}@s.whatsapp.net",
                    f"message {n} " * 6,
                    gowa_time(start + n),
                    n % 2,
                    "document" if n % 10 == 0 else "",
                    "file.pdf" if n % 10 == 0 else "",
                    "https://mmg.whatsapp.net/x" if n % 10 == 0 else "",
                    os.urandom(32) if n % 10 == 0 else None,
                    os.urandom(32) if n % 10 == 0 else None,
                    os.urandom(32) if n % 10 == 0 else None,
                    4096 if n % 10 == 0 else 0,
                    "/v/t62.7119-24/x" if n % 10 == 0 else "",
                )
                for n in range(messages)
            ],
        )
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--chats", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        storages = Path(scratch) / "storages"
        storages.mkdir()
        shutil.copyfile(args.store, storages / "whatsapp.db")
        db = sqlite3.connect(storages / "whatsapp.db")
        ((jid,),) = db.execute("SELECT jid FROM whatsmeow_device").fetchall()
        db.close()
        device = jid.split(":")[0].split("@")[0] + "@s.whatsapp.net"
        began = time.perf_counter()
        _history(storages / "chatstorage.db", device, args.messages, args.chats)
        filled = time.perf_counter()
        data = Path(scratch) / "data"
        import_gowa(ImportOptions(folder=storages, data_dir=data), lambda _line: None)
        done = time.perf_counter()
        size = (storages / "chatstorage.db").stat().st_size
        print(
            json.dumps(
                {
                    "messages": args.messages,
                    "chatstorage_mb": round(size / 2**20, 1),
                    "fill_s": round(filled - began, 2),
                    "import_s": round(done - filled, 2),
                    "messages_per_s": round(args.messages / (done - filled)),
                    "chats_db_mb": round(
                        sum(p.stat().st_size for p in (data / "sessions").rglob("chats.db*"))
                        / 2**20,
                        1,
                    ),
                }
            )
        )


if __name__ == "__main__":
    main()
