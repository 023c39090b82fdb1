"""Worker process entry point: one session, its sockets, its durable event log.

Started by the supervisor with a :class:`gowa_py.protocol.WorkerConfig` in the
``GOWA_WORKER_CONFIG`` environment variable and its :class:`gowa_py.protocol.WorkerKeys`
in a pipe named by ``GOWA_WORKER_KEYS_FD`` (the keys never enter the environment). It
exits on SIGTERM, on a ``Shutdown`` command, and by itself when the gateway that started
it is gone (no orphans, even after a SIGKILL of the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvloop

from gowa_py import protocol as p
from gowa_py.errors import GowaError
from gowa_py.ipc import WorkerLink
from gowa_py.storage import postgres
from gowa_py.storage.migrations import SchemaTooNew
from workers import golib
from workers.logfile import LOCAL_ONLY, RotatingLog
from workers.lost import LostMessageReporter
from workers.stores import open_session_stores
from workers.system import pagemerge, storefile, timerslack
from workers.system.confine import confine
from workers.system.prctl import prctl

if TYPE_CHECKING:
    from workers.operations.context import Context
    from workers.session import WhatsAppSession

log = logging.getLogger("gowa.worker")

PR_SET_PDEATHSIG = 1
# Events that exist only to be watched live; everything else is written to the log first.
EPHEMERAL_EVENTS = frozenset({"log"})
#: Commands answered on the event loop as they arrive: quick ones, the health check among
#: them, which must not wait behind sends that wait for WhatsApp. The rest run on threads.
INLINE_COMMANDS = (p.Ping, p.GetStatus, p.GetQR, p.Reconnect, p.Shutdown)
#: Threads for the other commands, each blocked in neonize until WhatsApp answers: the
#: sends (and other calls) of one session in flight at once. Started as needed.
COMMAND_THREADS = 16
#: Exit code of a worker that reached its memory ceiling in Python code.
EXIT_OUT_OF_MEMORY = 3


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
            event = p.Event(
                id=os.urandom(16).hex(),
                session_id=self.config.session_id,
                name=name,
                timestamp=time.time(),
                payload=payload,
            )
            self.link.publish(event)
            return True
        # Published once committed, under the database's lock: the gateway gets events
        # in the order of their sequence numbers, whichever threads recorded them, and
        # never one a crash could take back. Inside a caller's transaction (a sent
        # message and its event), that is when the caller's commits.
        with self.chats.transaction():
            recorded = self.events.append(name, payload, dedupe)
            if recorded is None:
                return False
            self.chats.after_commit(functools.partial(self.link.publish, recorded))
        return True

    def serve(self) -> None:
        """Greet the gateway and answer its requests from now on."""
        self.link.hello(os.getpid(), self.started_at, self.events.identity())
        self.link.serve(self._receive)

    def _receive(self, request: p.Request) -> None:
        if isinstance(request.command, INLINE_COMMANDS):
            self._answer(request)
        else:
            self.commands.submit(self._answer, request)

    def _answer(self, request: p.Request) -> None:
        try:
            reply = p.Reply(id=request.id, result=self._execute(request.command))
        except Exception as exc:
            from workers.session import SessionError

            if isinstance(exc, SessionError):
                error = p.ErrorInfo(code=exc.code, message=exc.message)
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

    def store_damaged(self, reason: str) -> None:
        """End this process for good: a session store cannot be read (any thread)."""
        message = f"{reason}: {storefile.DAMAGED_ADVICE}"
        log.error(message)
        report_exit(Path(self.config.session_dir), message)
        self.exit_code = p.EXIT_STORE_DAMAGED
        self.loop.call_soon_threadsafe(self.done.set)

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


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _setup_sandbox(config: p.WorkerConfig) -> None:
    """Trust the sandbox CA; must run before neonize loads its Go library."""
    if config.sandbox is not None:
        from workers import sandbox

        sandbox.trust_ca(config.sandbox.ca_file)


def _patch_root_key(config: p.WorkerConfig) -> None:
    if config.sandbox is not None:
        from workers import sandbox

        sandbox.patch_root_key(bytes.fromhex(config.sandbox.root_key))


def _operations(config: p.WorkerConfig, worker: Worker, session: WhatsAppSession) -> Context:
    """GoWA operations, the chat store and the per-session automations of this worker."""
    from neonize.events import CallOfferEv

    from workers.operations import updates
    from workers.operations.automations import Automations
    from workers.operations.context import Context
    from workers.operations.events import EventObserver

    context = Context(
        session,
        worker.stores.chats,
        config.settings,
        Path(config.session_dir),
        worker.emit,
        max_download_bytes=config.max_download_bytes,
    )
    automations = Automations(context)
    session.observers.append(EventObserver(context, automations).observe)
    session.client.event(CallOfferEv)(automations.on_call_offer)
    updates.register(session.client, context)
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
        database = postgres.whatsmeow_url(keys.database_url, config.session_id)
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
        )
    except sqlite3.DatabaseError as exc:
        if not storefile.damaged(str(exc)):
            raise
        raise StoreDamaged(
            f"whatsmeow.db cannot be opened ({exc}): {storefile.DAMAGED_ADVICE}"
        ) from exc
    worker.session = session
    worker.operations = _operations(config, worker, session)
    worker.emit(
        p.SESSION_STATUS, {"status": "STARTING", "previous": None, "error": None, "me": None}
    )
    worker.serve()
    tasks = [
        asyncio.create_task(worker.watch_parent(), name="parent"),
        asyncio.create_task(worker.watch_silence(), name="silence"),
    ]
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
    threading.Thread(target=connect, name="neonize-connect", daemon=True).start()
    await worker.done.wait()
    log.info("stopping")
    session.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(connection_done.wait(), 2)
    for task in tasks:
        task.cancel()
    worker.commands.shutdown(wait=False, cancel_futures=True)
    await worker.link.close()
    worker.operations.close()
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
