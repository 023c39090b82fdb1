"""A running worker: its session's stores, its link to the gateway, its durable event log,
the commands it answers and the ways it ends (see :mod:`workers.run` for its start)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gowa_py import protocol as p
from gowa_py.errors import GowaError
from gowa_py.ipc import WorkerLink
from gowa_py.storage.migrations import SchemaTooNew
from workers.dbwatch import DatabaseWatch, connection_lost
from workers.errors import SessionError
from workers.lease import LeaseClock
from workers.logfile import LOCAL_ONLY, RotatingLog
from workers.lost import LostMessageReporter
from workers.stores import open_session_stores
from workers.system import storefile

if TYPE_CHECKING:
    from workers.operations.context import Context
    from workers.session import WhatsAppSession

log = logging.getLogger("gowa.worker")

# Events that exist only to be watched live; everything else is written to the log first.
EPHEMERAL_EVENTS = frozenset({"log"})
#: Commands answered on the event loop as they arrive: quick ones, the health check among
#: them, which must not wait behind sends that wait for WhatsApp. The rest run on threads.
INLINE_COMMANDS = (p.Ping, p.GetStatus, p.GetQR, p.Reconnect, p.Shutdown, p.LeaseRenewed)
#: Threads for the other commands, each blocked in neonize until WhatsApp answers: the
#: sends (and other calls) of one session in flight at once. Started as needed.
COMMAND_THREADS = 16
#: Exit code of a worker that reached its memory ceiling in Python code.
EXIT_OUT_OF_MEMORY = 3
#: Seconds a worker whose command connection dropped waits to see whether the gateway
#: is gone too (its pidfd wakes watch_parent) before it blames itself.
LOST_CONNECTION_GRACE = 1.0


class StoreDamaged(GowaError):
    """A session store that cannot be opened: restarting the worker cannot help."""


def report_exit(session_dir: Path, reason: str) -> None:
    """Leave why this worker fails where the supervisor looks (``EXIT_REASON_FILE``)."""
    try:
        (session_dir / p.EXIT_REASON_FILE).write_text(reason)
    except OSError as exc:
        log.warning("could not write the exit reason: %s", exc)


class LogForwarder(logging.Handler):
    """Publishes the worker's log records as ``log`` events for the dashboard's live log.

    A record logged with ``extra={LOCAL_ONLY: True}`` stays in worker.log: the live log
    reaches API clients, and some details (a proxy's dial errors) are for the operator.
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__(logging.INFO)
        self._worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, LOCAL_ONLY, False):
            return
        try:
            message = record.getMessage()
        except Exception:
            return
        self._worker.emit(
            "log", {"level": record.levelname, "logger": record.name, "message": message[:2000]}
        )


class Worker:
    def __init__(
        self, config: p.WorkerConfig, loop: asyncio.AbstractEventLoop, keys: p.WorkerKeys
    ) -> None:
        self.config = config
        self.loop = loop
        self.started_at = time.time()
        session_dir = Path(config.session_dir)
        try:
            self.stores = open_session_stores(
                session_dir,
                config.session_id,
                config.event_retention,
                config.settings.chat_retention_days,
                keys.database_url,
                keys.database_pooled,
            )
        except SchemaTooNew as exc:
            raise StoreDamaged(str(exc)) from exc  # a restart runs the same code
        except sqlite3.DatabaseError as exc:
            if not storefile.damaged(str(exc)):
                raise  # locked, read-only, disk full...: a restart may help
            raise StoreDamaged(
                f"chats.db cannot be opened ({exc}): restore it from a backup, or move it "
                "away to start with an empty chat history"
            ) from exc
        self.chats = self.stores.db
        self.events = self.stores.events
        self.link = WorkerLink(
            config.session_id,
            config.command_endpoint,
            config.event_endpoint,
            config.server_key,
            keys,
        )
        self.session: WhatsAppSession | None = None
        self.operations: Context | None = None
        self.done = asyncio.Event()
        self.exit_code = 0
        #: The session's lease in a cluster (workers/lease.py); None: no cluster.
        self.lease = (
            LeaseClock(config.lease_valid_until) if config.lease_valid_until is not None else None
        )
        #: On PostgreSQL, the watch that takes the session off WhatsApp while the
        #: database is away (started once the session exists); None on SQLite.
        self.database = (
            DatabaseWatch(self.stores.postgres, loop, self._database_lost, self._database_back)
            if self.stores.postgres is not None
            else None
        )
        self.lost: LostMessageReporter | None = None
        self.log_file: RotatingLog | None = None
        self.commands = ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="command")
        # The periodic checks' to_thread calls share these threads: an idle worker keeps
        # one thread (and one malloc arena) for both, not one each.
        loop.set_default_executor(self.commands)

    def emit(self, name: str, payload: dict[str, Any], dedupe: str | None = None) -> bool:
        """Record and publish an event; callable from any thread (neonize calls from Go threads).

        ``dedupe`` names the fact an event reports (a message id, a receipt); an event whose
        fact was already recorded is dropped, so a restart never emits it twice; the
        answer is False then, so callers skip their follow-up work (an auto-reply) too.
        """
        if name in EPHEMERAL_EVENTS:
            self.emit_live(name, payload)
            return True
        # Published once committed, under the database's lock: the gateway gets events
        # in the order of their sequence numbers, whichever threads recorded them, and
        # never one a crash could take back. Inside a caller's transaction (a sent
        # message and its event), that is when the caller's commits.
        try:
            with self.chats.transaction():
                recorded = self.events.append(name, payload, dedupe)
                if recorded is None:
                    return False
                self.chats.after_commit(functools.partial(self.link.publish, recorded))
        except Exception as exc:
            if name != p.SESSION_STATUS or not connection_lost(exc):
                raise
            # The status saying the database is away cannot wait for it: published
            # live (as a log line is), it reaches the gateway and the dashboard now.
            self.emit_live(name, payload)
        return True

    def emit_live(self, name: str, payload: dict[str, Any]) -> None:
        """Publish an event without recording it (sequence number 0)."""
        event = p.Event(
            id=os.urandom(16).hex(),
            session_id=self.config.session_id,
            name=name,
            timestamp=time.time(),
            payload=payload,
        )
        self.link.publish(event)

    def serve(self) -> None:
        """Greet the gateway and answer its requests from now on."""
        self.link.hello(os.getpid(), self.started_at, self.events.identity())
        self.link.serve(self._receive, self.lost_connection)

    def _receive(self, request: p.Request) -> None:
        if isinstance(request.command, INLINE_COMMANDS):
            self._answer(request)
        else:
            self.commands.submit(self._answer, request)

    def _answer(self, request: p.Request) -> None:
        try:
            reply = p.Reply(id=request.id, result=self._execute(request.command))
        except Exception as exc:
            if isinstance(exc, SessionError):
                error = p.ErrorInfo(code=exc.code, message=exc.message)
            elif self.database is not None and connection_lost(exc):
                self.database.failed(f"{type(exc).__name__}: {exc}")
                error = p.ErrorInfo(
                    code=p.ErrorCode.DATABASE_UNAVAILABLE,
                    message="the session's database does not answer; retry later",
                )
            elif isinstance(exc, MemoryError):
                self.out_of_memory(f"command {type(request.command).__name__}")
                error = p.ErrorInfo(
                    code=p.ErrorCode.WORKER_ERROR, message="the worker ran out of memory"
                )
            else:
                log.exception("command %s failed", type(request.command).__name__)
                error = p.ErrorInfo(
                    code=p.ErrorCode.WORKER_ERROR, message=f"{type(exc).__name__}: {exc}"
                )
            reply = p.Reply(id=request.id, error=error)
        if time.time() <= request.deadline + 1:
            self.link.reply(reply)

    def _execute(self, command: p.Command) -> p.Result:
        session = self.session
        assert session is not None
        match command:
            case p.Ping():
                return p.Pong(pid=os.getpid(), uptime_s=time.time() - self.started_at)
            case p.GetStatus():
                return session.status()
            case p.GetQR():
                status = session.status()
                return p.QRCode(code=status.qr, expires_at=status.qr_expires_at)
            case p.PairPhone(phone=phone):
                return p.PairCode(code=session.pair_phone(phone))
            case p.Logout():
                session.logout()
                return p.Done()
            case p.Reconnect():
                self.request_restart("reconnect requested through the API")
                return p.Done()
            case p.ReplayEvents(after_seq=after, limit=limit):
                return p.Events(events=self.events.since(after, min(limit, 5000)))
            case p.Shutdown():
                self.loop.call_soon_threadsafe(self.loop.call_later, 0.05, self.done.set)
                return p.Done()
            case p.LeaseRenewed(valid_until=valid_until):
                if self.lease is not None:
                    self.lease.extend(valid_until)
                return p.Done()
            case p.Operation(input=op):
                assert self.operations is not None
                return self.operations.run(op)
        raise ValueError(f"unknown command {command!r}")

    def out_of_memory(self, where: str) -> None:
        """Past the memory ceiling (workers/system/confine.py): end this process, which may fail
        anywhere next, so the supervisor starts a fresh one; a crash, as Go's own death
        of it is (callable from any thread)."""
        log.error("out of memory in %s: the worker_memory_mb ceiling; exiting", where)
        self.exit_code = EXIT_OUT_OF_MEMORY
        self.loop.call_soon_threadsafe(self.done.set)

    def lost_connection(self) -> None:
        """The command connection to the gateway dropped (gowa_py.ipc.WorkerLink.serve): no
        command reaches this worker any more, so it ends and the supervisor starts a fresh
        one at once rather than after its watchdog's pings. A gateway that exits drops the
        connection too; then watch_parent has ended the worker by the time this looks."""

        def judge() -> None:
            if self.done.is_set():
                return
            cause = (
                "the command connection to the gateway "
                "(libzmq drops it when it cannot allocate a message)"
            )
            if self.config.memory_limit_bytes:
                self.out_of_memory(cause)
                return
            log.error("lost %s; exiting", cause)
            report_exit(Path(self.config.session_dir), f"lost {cause}")
            self.exit_code = 1
            self.done.set()

        self.loop.call_later(LOST_CONNECTION_GRACE, judge)

    def on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), MemoryError):
            self.out_of_memory(str(context.get("handle") or context.get("message")))
        else:
            loop.default_exception_handler(context)

    def on_thread_error(self, args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, MemoryError):
            self.out_of_memory(f"thread {args.thread.name if args.thread else '?'}")
        else:
            threading.__excepthook__(args)

    def lease_lapsed(self) -> None:
        """The node did not renew the session's lease in time: disconnect and exit
        before another node may connect the device."""
        message = "the node stopped renewing the session's lease; disconnected"
        log.error(message)
        report_exit(Path(self.config.session_dir), message)
        self.exit_code = 1
        self.done.set()

    def store_damaged(self, reason: str) -> None:
        """End this process for good: a session store cannot be read (any thread)."""
        message = f"{reason}: {storefile.DAMAGED_ADVICE}"
        log.error(message)
        report_exit(Path(self.config.session_dir), message)
        self.exit_code = p.EXIT_STORE_DAMAGED
        self.loop.call_soon_threadsafe(self.done.set)

    def hold(self, error: BaseException, record: Callable[[], None]) -> bool:
        """Keep an incoming message's or receipt's ``record``, which failed with ``error``,
        for when the database answers again, if it failed for the database being away."""
        return self.database is not None and self.database.hold(error, record)

    def _database_lost(self, _reason: str) -> None:
        if self.session is not None:
            # Off the loop (whatsmeow's disconnect closes its websocket), and on a thread
            # of its own: the command threads may all be waiting for WhatsApp.
            threading.Thread(
                target=self.session.database_lost, name="database-lost", daemon=True
            ).start()

    def _database_back(self) -> None:
        # neonize cannot dial again in this process (see WhatsAppSession.run).
        self.request_restart("the database answers again")

    def request_restart(self, reason: str) -> None:
        """End this process so the supervisor starts a fresh one (callable from any thread)."""
        log.info("restarting the worker: %s", reason)
        self.exit_code = p.EXIT_RESTART
        if self.session is not None:
            self.session.restarting(reason)
        # A moment's delay lets the reply to a Reconnect command leave first.
        self.loop.call_soon_threadsafe(self.loop.call_later, 0.05, self.done.set)

    async def watch_silence(self) -> None:
        """Periodic checks: a silent connection, messages that may have been lost, and
        the size of worker.log."""
        while not self.done.is_set():
            await asyncio.sleep(5)
            if self.log_file is not None:
                self.log_file.check()
            if self.session is not None:
                await asyncio.to_thread(self.session.check_silence)
            if self.lost is not None:
                await asyncio.to_thread(self.lost.judge)

    async def watch_parent(self) -> None:
        """Exit when the gateway is gone, even after a SIGKILL of it.

        PDEATHSIG covers a worker that is the gateway's child; one forked by the zygote
        must outlive a zygote crash, so every worker also watches a pidfd of the gateway.
        """
        try:
            pidfd = os.pidfd_open(self.config.parent_pid)
        except ProcessLookupError:
            pidfd = None
        if pidfd is not None:
            gone = asyncio.Event()
            self.loop.add_reader(pidfd, gone.set)
            try:
                await gone.wait()
            finally:
                self.loop.remove_reader(pidfd)
                os.close(pidfd)
        log.warning("gateway (pid %d) is gone; exiting", self.config.parent_pid)
        self.done.set()
