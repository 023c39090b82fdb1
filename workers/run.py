"""Worker process entry point: one session, from its config to its exit code.

Started by the supervisor with a :class:`gowa_py.protocol.WorkerConfig` in the
``GOWA_WORKER_CONFIG`` environment variable and its :class:`gowa_py.protocol.WorkerKeys`
in a pipe named by ``GOWA_WORKER_KEYS_FD`` (the keys never enter the environment). It
exits on SIGTERM, on a ``Shutdown`` command, and by itself when the gateway that started
it is gone (no orphans, even after a SIGKILL of the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from gowa_py import protocol as p
from gowa_py.storage import postgres
from workers import golib
from workers.logfile import RotatingLog
from workers.lost import LostMessageReporter
from workers.system import pagemerge, storefile, timerslack
from workers.system.confine import confine
from workers.system.prctl import prctl
from workers.worker import EXIT_OUT_OF_MEMORY, LogForwarder, StoreDamaged, Worker, report_exit

if TYPE_CHECKING:
    from workers.operations.context import Context
    from workers.session import WhatsAppSession

log = logging.getLogger("gowa.worker")

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _setup_sandbox(config: p.WorkerConfig) -> None:
    """Trust the sandbox CA; must run before neonize loads its Go library."""
    if config.sandbox is not None:
        from gowa_py.sim import redirect

        redirect.trust_ca(config.sandbox.ca_file)


def _patch_root_key(config: p.WorkerConfig) -> None:
    if config.sandbox is not None:
        from gowa_py.sim import redirect

        redirect.patch_root_key(bytes.fromhex(config.sandbox.root_key))


def _operations(config: p.WorkerConfig, worker: Worker, session: WhatsAppSession) -> Context:
    """GoWA operations, the chat store and the per-session automations of this worker."""
    from neonize.events import CallOfferEv

    from workers.operations import history, updates
    from workers.operations.automations import Automations
    from workers.operations.context import Context
    from workers.operations.events import EventObserver

    context = Context(
        session,
        worker.stores.chats,
        worker.stores.whatsmeow,
        config.settings,
        Path(config.session_dir),
        worker.emit,
        max_download_bytes=config.max_download_bytes,
    )
    automations = Automations(context)
    session.observers.append(EventObserver(context, automations).observe)
    session.client.event(CallOfferEv)(automations.on_call_offer)
    updates.register(session.client, context)
    history.register(session.client, context)
    return context


async def _run(config: p.WorkerConfig, keys: p.WorkerKeys, log_file: RotatingLog) -> int:
    loop = asyncio.get_running_loop()
    worker = Worker(config, loop, keys)
    worker.log_file = log_file
    loop.set_exception_handler(worker.on_loop_error)
    threading.excepthook = worker.on_thread_error
    logging.getLogger().addHandler(LogForwarder(worker))
    worker.lost = LostMessageReporter(worker.stores.suspects, worker.events, worker.emit)
    logging.getLogger("whatsmeow").addHandler(worker.lost)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.done.set)

    from workers.session import WhatsAppSession

    _patch_root_key(config)
    proxy = config.sandbox.proxy if config.sandbox is not None else config.proxy
    store = Path(config.session_dir) / "whatsmeow.db"
    if keys.database_url:
        database = postgres.whatsmeow_url(
            keys.database_url, config.session_id, keys.database_pooled
        )
    else:
        storefile.use_wal(store)
        database = str(store)
    try:
        session = WhatsAppSession(
            config.session_id,
            database,
            worker.emit,
            proxy=proxy,
            proxy_is_users=config.sandbox is None and config.proxy is not None,
            backoff_cap_s=config.connect_backoff_cap_s,
            qr_limit=config.qr_limit,
            silence_timeout_s=config.silence_timeout_s,
            request_restart=worker.request_restart,
            store_damaged=worker.store_damaged,
            transaction=worker.chats.transaction,
            hold=worker.hold,
        )
    except sqlite3.DatabaseError as exc:
        if not storefile.damaged(str(exc)):
            raise
        raise StoreDamaged(
            f"whatsmeow.db cannot be opened ({exc}): {storefile.DAMAGED_ADVICE}"
        ) from exc
    worker.session = session
    worker.operations = _operations(config, worker, session)
    if worker.database is not None:
        worker.database.start()
    worker.emit(
        p.SESSION_STATUS, {"status": "STARTING", "previous": None, "error": None, "me": None}
    )
    worker.serve()
    tasks = [
        asyncio.create_task(worker.watch_parent(), name="parent"),
        asyncio.create_task(worker.watch_silence(), name="silence"),
    ]
    if worker.lease is not None:
        tasks.append(asyncio.create_task(worker.lease.watch(worker.lease_lapsed), name="lease"))
    # A gateway that dies meanwhile must not keep us waiting the full 10 s.
    subscribed = asyncio.create_task(worker.link.wait_subscribed(10))
    stopped = asyncio.create_task(worker.done.wait())
    await asyncio.wait({subscribed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    subscribed.cancel()
    if not worker.done.is_set() and not subscribed.result():
        log.warning("gateway has not subscribed to events after 10 s; events stay in the log")
    connection_done = asyncio.Event()

    def connect() -> None:
        try:
            session.run()
        finally:
            loop.call_soon_threadsafe(connection_done.set)

    # A daemon thread, not the loop's executor: neonize's blocking connect does not always
    # return after a stop (seen while a QR code is showing), and exiting must not wait.
    if worker.lease is None or not worker.lease.lapsed():
        threading.Thread(target=connect, name="neonize-connect", daemon=True).start()
    await worker.done.wait()
    log.info("stopping")
    session.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(connection_done.wait(), 2)
    for task in tasks:
        task.cancel()
    if worker.database is not None:
        worker.database.close()
    worker.commands.shutdown(wait=False, cancel_futures=True)
    await worker.link.close()
    worker.operations.close()
    worker.stores.whatsmeow.close()
    worker.chats.close()
    if not keys.database_url:
        storefile.checkpoint(store)
    return worker.exit_code


def _read_keys() -> p.WorkerKeys:
    """This process's credentials on the gateway's sockets, from the pipe the gateway
    filled for it alone (gowa_py/supervisor/process.py), closed once read."""
    fd = os.environ.pop(p.KEYS_FD_ENV, "")
    if not fd.isdigit():
        sys.exit(f"{p.KEYS_FD_ENV} is not set; workers are started by the gateway")
    with open(int(fd), "rb") as pipe:
        return p.decode_keys(pipe.read())


def main(forked: bool = False) -> None:
    """Run one worker; ``forked`` when the zygote forked it (see workers/zygote.py)."""
    if not forked:
        _die_with_parent()
        pagemerge.opt_in()  # a forked worker inherits the zygote's choice and slack
        timerslack.apply()
    raw = os.environ.get(p.CONFIG_ENV)
    if not raw:
        sys.exit(f"{p.CONFIG_ENV} is not set; workers are started by the gateway")
    config = p.decode_config(raw)
    keys = _read_keys()
    log_file = RotatingLog(Path(config.session_dir) / "worker.log", config.log_max_bytes)
    logging.basicConfig(
        level=config.log_level,
        handlers=[log_file],
        format=f"%(asctime)s %(levelname)s [{config.session_id}] %(name)s: %(message)s",
    )
    if not forked and os.getppid() != config.parent_pid:
        sys.exit("gateway exited before the worker started")
    _setup_sandbox(config)
    if not forked:
        # What a forked worker inherits from the zygote: every module imported while the
        # Python installation is surely in reach (confine may switch to a uid that cannot
        # read it), neonize's Go library left for after confinement.
        golib.preload()
    confine(config)  # before the Go library starts its threads
    golib.load_go_library()
    # Not asyncio.run(): its shutdown joins executor threads, and a thread stuck in a Go
    # call would keep this process alive forever. os._exit below ends every thread.
    # uvloop: its self-pipe and reader bookkeeping are C, not Python, which lowers a
    # worker's CPU per send (docs/benchmarks.md, "API latency").
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(_run(config, keys, log_file))
    except Exception as exc:
        # The traceback goes to worker.log; the cause, to the session's error.
        log.exception("worker failed")
        damaged = isinstance(exc, StoreDamaged)
        report_exit(
            Path(config.session_dir), str(exc) if damaged else f"{type(exc).__name__}: {exc}"
        )
        if damaged:
            code = p.EXIT_STORE_DAMAGED
        else:
            code = EXIT_OUT_OF_MEMORY if isinstance(exc, MemoryError) else 1
    logging.shutdown()
    # Go threads inside neonize never join; leave without waiting for them.
    os._exit(code)
