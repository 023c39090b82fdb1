"""One WhatsApp account through neonize: the connect loop and the session state machine.

neonize calls back from Go threads, so every state change goes through one lock and is
handed to ``emit`` (thread-safe) as a ``session.status`` or ``session.qr`` event.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from neonize._binder import ProxySettings
from neonize.client import NewClient
from neonize.events import (
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto import Neonize_pb2 as pb

from gowa_py import protocol as p
from gowa_py.backoff import backoff_delay
from workers import lids, payloads
from workers.errors import SessionError
from workers.logfile import LOCAL_ONLY
from workers.system import storefile
from workers.watchdog import SilenceWatch

log = logging.getLogger("gowa.worker.session")
#: The logger whose *own* level neonize hands to whatsmeow's Go logger at connect.
NEONIZE_LOGGER = "neonize.utils.log"


class Emit(Protocol):
    def __call__(
        self, name: str, payload: dict[str, Any], dedupe: str | None = None
    ) -> bool | None: ...


# whatsmeow shows the first QR code for 60 s and each following one for 20 s.
FIRST_QR_TTL_S = 60
NEXT_QR_TTL_S = 20
CONNECT_FAILED = "could not connect through the proxy; the worker log says why"
#: whatsmeow's QR channel item when WhatsApp asks for the account's passkey during pairing.
PASSKEY_REQUEST_ITEM = "passkey-request"
DATABASE_UNAVAILABLE = (
    f"{p.ErrorCode.DATABASE_UNAVAILABLE.value}: the session's database does not answer; "
    "off WhatsApp until it does (WhatsApp keeps the messages meanwhile)"
)
PASSKEY_REQUIRED = (
    f"{p.PASSKEY_REQUIRED}: WhatsApp asked for the account's passkey to link "
    "this device, which neonize cannot answer; the QR code scanned no longer links (whatsmeow "
    "replaced its secret)"
)


class _Client(NewClient):
    """neonize's client, handing the session the login items of whatsmeow's QR channel.

    neonize passes every item of that channel other than a code (``success``, ``timeout``,
    ``passkey-request``, ...) to its private ``__onLoginStatus`` callback, which only prints
    the item's address; overriding it is the one way to see them. A neonize that renames
    the callback fails ``tests/e2e/test_passkey.py``.
    """

    def __init__(self, store: str, session_id: str, on_login_item: Callable[[str], None]) -> None:
        super().__init__(store, uuid=session_id)
        self._on_login_item = on_login_item

    def _NewClient__onLoginStatus(self, _uuid: int, item: int) -> None:
        # Go frees the C string when the callback returns: read it now.
        self._on_login_item(ctypes.string_at(item).decode(errors="replace"))


class WhatsAppSession:
    """Owns the neonize client of one session and keeps its status current."""

    def __init__(
        self,
        session_id: str,
        store: str,
        emit: Emit,
        proxy: str | None = None,
        proxy_is_users: bool = False,
        backoff_cap_s: float = 60.0,
        qr_limit: int = 6,
        silence_timeout_s: float = 180.0,
        request_restart: Callable[[str], None] = lambda _reason: None,
        store_damaged: Callable[[str], None] = lambda _reason: None,
        transaction: Callable[[], AbstractContextManager[Any]] = nullcontext,
        hold: Callable[[BaseException, Callable[[], None]], bool] = lambda _exc, _record: False,
    ) -> None:
        self.session_id = session_id
        self._emit = emit
        # The worker's chats.db transaction: an incoming message or receipt and what the
        # observers store of it are one commit (two cost a commit's locks and log writes).
        self._transaction = transaction
        # An incoming message or receipt whose recording failed because the database is
        # away: kept to record again once it answers (workers/dbwatch.py), if ``hold`` says so.
        self._hold = hold
        self._database_away = False
        self._proxy = proxy
        # A proxy from the session's config was chosen by an API user, so the dial errors
        # through it (which address and port answered, and how) must not reach the API.
        self._proxy_is_users = proxy_is_users
        self._backoff_cap_s = backoff_cap_s
        self._qr_limit = qr_limit
        # neonize cannot dial again once its client was stopped, so a reconnect is a fresh
        # worker process: the worker exits with EXIT_RESTART and the supervisor restarts it.
        self._request_restart = request_restart
        # whatsmeow.db cannot be read: the worker exits for good (EXIT_STORE_DAMAGED)
        # instead of retrying a connect that fails the same way forever.
        self._store_damaged = store_damaged
        self.silence = SilenceWatch(silence_timeout_s)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self.state = p.SessionState.STARTING
        self.since = time.time()
        self.me: p.Me | None = None
        self.qr: str | None = None
        self.qr_expires_at: float | None = None
        self.error: str | None = None
        self.last_activity: float | None = None
        self._qr_count = 0
        # WhatsApp asked for a passkey: whatsmeow voided the QR codes it still emits.
        self._passkey_requested = False
        # Called (on Go threads) with each Message, Receipt and Connected event.
        self.observers: list[Callable[[Any], None]] = []
        # neonize's database: a SQLite file (in WAL mode, see storefile.use_wal) or a
        # postgresql:// URL whose search_path is the session's schema; either holds this
        # session's device alone, so neonize's "first device" is this session's.
        self.client = _Client(store, session_id, self._on_login_item)
        self.people = lids.Directory(self.client)
        self._register_handlers()
        _match_whatsmeow_log_level()

    # ------------------------------------------------------------------ state

    def status(self) -> p.Status:
        with self._lock:
            return p.Status(
                state=self.state,
                since=self.since,
                me=self.me,
                qr=self.qr,
                qr_expires_at=self.qr_expires_at,
                error=self.error,
                last_activity=self.last_activity,
            )

    def _set_state(self, state: p.SessionState, error: str | None = None) -> None:
        with self._lock:
            if state == self.state and error == self.error:
                return
            previous, self.state, self.error, self.since = self.state, state, error, time.time()
            if state != p.SessionState.SCAN_QR_CODE:
                self.qr = self.qr_expires_at = None
                self._qr_count = 0
            payload = {
                "status": state.value,
                "previous": previous.value,
                "error": error,
                "me": {"jid": self.me.jid, "push_name": self.me.push_name} if self.me else None,
            }
        log.info("status %s -> %s%s", previous.value, state.value, f" ({error})" if error else "")
        self._emit(p.SESSION_STATUS, payload)

    def touch(self) -> None:
        """Note activity now: the ``last_activity`` the session's status reports."""
        self.last_activity = time.time()

    # --------------------------------------------------------------- handlers

    def _register_handlers(self) -> None:
        event = self.client.event
        event.qr(self._on_qr)
        event(ConnectedEv)(self._on_connected)
        event(DisconnectedEv)(self._on_disconnected)
        event(LoggedOutEv)(self._on_logged_out)
        event(PairStatusEv)(self._on_pair_status)
        event(ConnectFailureEv)(self._on_connect_failure)
        event(StreamReplacedEv)(self._on_stream_replaced)
        event(TemporaryBanEv)(self._on_temporary_ban)
        event(KeepAliveTimeoutEv)(self._on_keepalive_timeout)
        event(KeepAliveRestoredEv)(self._on_keepalive_restored)
        event(MessageEv)(self._on_message)
        event(ReceiptEv)(self._on_receipt)

    def _on_qr(self, _client: NewClient, data: bytes) -> None:
        code = data.decode()
        with self._lock:
            if self._passkey_requested:
                return
            expired = self._qr_limit > 0 and self._qr_count >= self._qr_limit
            count = self._qr_count
        if expired:
            self._expire_qr(count)
            return
        with self._lock:
            ttl = FIRST_QR_TTL_S if self._qr_count == 0 else NEXT_QR_TTL_S
            self._qr_count += 1
            self.qr, self.qr_expires_at = code, time.time() + ttl
            count = self._qr_count
        self._set_state(p.SessionState.SCAN_QR_CODE)
        self._emit(p.SESSION_QR, {"qr_code": code, "qr_duration": ttl, "sequence": count})

    def _expire_qr(self, count: int) -> None:
        """Nobody scanned: stop asking (WAHA #1799) instead of showing codes forever."""
        message = (
            f"no QR code was scanned ({count} codes shown); start the session again for fresh codes"
        )
        log.warning(message)
        self._set_state(p.SessionState.STOPPED, message)
        self._emit(p.SESSION_QR_EXPIRED, {"codes": count, "message": message})
        # Stopping the client from inside its own callback would wait on itself.
        threading.Thread(target=self.stop, name="qr-expired", daemon=True).start()

    def _on_login_item(self, item: str) -> None:
        if item == PASSKEY_REQUEST_ITEM:
            self._passkey_required()
        else:
            log.info("login: %s", item)

    def _passkey_required(self) -> None:
        """The phone's account protects linking with a passkey: say so and stop, instead
        of showing QR codes that whatsmeow has voided and that would never link."""
        log.warning(PASSKEY_REQUIRED)
        with self._lock:
            self._passkey_requested = True
        self._set_state(p.SessionState.STOPPED, PASSKEY_REQUIRED)
        self._emit(
            p.SESSION_PASSKEY_REQUIRED,
            {"code": p.PASSKEY_REQUIRED, "message": PASSKEY_REQUIRED},
        )
        # Called on neonize's login loop: stopping the client from here would wait on itself.
        threading.Thread(target=self.stop, name="passkey-required", daemon=True).start()

    def _on_connected(self, _client: NewClient, _ev: pb.Connected) -> None:
        self._refresh_me()
        self.touch()
        self._set_state(p.SessionState.CONNECTED)
        self._notify(_ev)

    def _on_disconnected(self, _client: NewClient, _ev: pb.Disconnected) -> None:
        if self._stopping.is_set() or self._database_away:
            return
        with self._lock:
            logged_out = self.state in (p.SessionState.LOGGED_OUT, p.SessionState.SCAN_QR_CODE)
        if not logged_out:
            self._set_state(
                p.SessionState.DISCONNECTED, "connection to WhatsApp lost; reconnecting"
            )

    def _on_logged_out(self, _client: NewClient, ev: pb.LoggedOut) -> None:
        reason = pb.ConnectFailureReason.Name(ev.Reason) if ev.Reason else "LOGGED_OUT"
        with self._lock:
            self.me = None
        self._set_state(p.SessionState.LOGGED_OUT, f"unlinked from the phone ({reason})")

    def _on_pair_status(self, _client: NewClient, ev: pb.PairStatus) -> None:
        if ev.Status == pb.PairStatus.ERROR:
            log.warning("pairing failed: %s", ev.Error)
            self._emit("session.pair", {"success": False, "error": ev.Error})
        else:
            log.info("paired (%s)", ev.Platform or "unknown platform")
            self._emit("session.pair", {"success": True, "error": None})

    def _on_connect_failure(self, _client: NewClient, ev: pb.ConnectFailure) -> None:
        reason = pb.ConnectFailureReason.Name(ev.Reason) if ev.Reason else "UNKNOWN"
        self._set_state(p.SessionState.DISCONNECTED, f"connect failure {reason}: {ev.Message}")

    def _on_stream_replaced(self, _client: NewClient, _ev: pb.StreamReplaced) -> None:
        self._set_state(
            p.SessionState.DISCONNECTED, "stream replaced: another client connected as this device"
        )

    def _on_temporary_ban(self, _client: NewClient, ev: pb.TemporaryBan) -> None:
        self._set_state(
            p.SessionState.DISCONNECTED, f"temporarily banned (expires in {ev.Expire}s)"
        )

    def _on_keepalive_timeout(self, _client: NewClient, _ev: pb.KeepAliveTimeout) -> None:
        log.warning("keepalive to WhatsApp timed out")
        self.silence.keepalive_failed(time.time())

    def _on_keepalive_restored(self, _client: NewClient, _ev: pb.KeepAliveRestored) -> None:
        log.info("keepalive to WhatsApp restored")
        self.silence.traffic()

    def check_silence(self) -> None:
        """Reconnect a CONNECTED session whose keepalives have failed for too long."""
        silent = self.silence.overdue(time.time())
        if silent is None or self.state != p.SessionState.CONNECTED:
            return
        reason = f"no answer from WhatsApp for {silent:.0f} s (keepalives failing)"
        log.warning("watchdog: %s; reconnecting", reason)
        self._emit("session.watchdog", {"action": "reconnect", "reason": reason})
        self._request_restart(reason)

    def _on_message(self, _client: NewClient, ev: pb.Message) -> None:
        self.touch()
        self.silence.traffic()
        if not payloads.carries_content(ev.Message):
            return
        self._recorded(functools.partial(self._record_message, ev))

    def _recorded(self, record: Callable[[], None]) -> None:
        try:
            record()
        except Exception as exc:
            if not self._hold(exc, record):
                raise

    def _record_message(self, ev: pb.Message) -> None:
        name, payload = payloads.message_payload(ev, self.people)
        # Durable record first: whatsmeow has already committed the decryption, so this is
        # the window in which a crash loses the message (see workers/lost.py).
        with self._transaction():
            if self._emit(name, payload, dedupe=f"{name}:{payload['chat_id']}:{payload['id']}"):
                self._notify(ev)

    def _on_receipt(self, _client: NewClient, ev: pb.Receipt) -> None:
        self.touch()
        self._recorded(functools.partial(self._record_receipt, ev))

    def _record_receipt(self, ev: pb.Receipt) -> None:
        payload = payloads.receipt_payload(ev, self.people)
        ids = ",".join(payload["ids"])
        with self._transaction():
            recorded = self._emit(
                "message.ack",
                payload,
                dedupe=f"ack:{payload['receipt_type']}:{payload['from']}:{ids}",
            )
            if recorded:
                self._notify(ev)

    def _notify(self, event: Any) -> None:
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                log.exception("observer failed on %s", type(event).__name__)

    def _refresh_me(self) -> None:
        try:
            device = self.client.get_me()
        except Exception as exc:
            log.warning("could not read own device info: %s", exc)
            return
        if device.JID.User:
            lid = payloads.non_ad(device.LID) or None
            with self._lock:
                self.me = p.Me(jid=payloads.non_ad(device.JID), push_name=device.PushName, lid=lid)

    # ------------------------------------------------------------ connection

    def run(self) -> None:
        """Connect and stay connected until :meth:`stop`; blocking, run it in a thread.

        neonize's ``connect`` returns only when the Go context is stopped, or at once when
        the first dial fails (whatsmeow does not retry that itself), so failed dials are
        retried here with capped exponential backoff instead of crashing the worker.
        """
        attempt = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                proxy = ProxySettings(proxy_address=self._proxy) if self._proxy else None
                self.client.connect(proxy)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                if storefile.damaged(str(exc)):
                    self._store_damaged(f"whatsmeow.db cannot be opened ({exc})")
                    break
                if time.monotonic() - started > 30:
                    attempt = 0
                delay = backoff_delay(attempt, base=1.0, cap=self._backoff_cap_s, jitter=0.1)
                attempt += 1
                if self._proxy_is_users:
                    # The dial error names the proxy's address and says whether it
                    # answered: shown in the API, it would let a user scan the host.
                    self._set_state(p.SessionState.DISCONNECTED, CONNECT_FAILED)
                    log.warning("connect failed (%s)", exc, extra={LOCAL_ONLY: True})
                else:
                    self._set_state(p.SessionState.DISCONNECTED, str(exc))
                log.info("connect failed; retry %d in %.1f s", attempt, delay)
                self._wake.wait(delay)
                self._wake.clear()
                continue
            break

    def database_lost(self) -> None:
        """The database went away: off WhatsApp at once, so that no message reaches a
        worker that cannot keep it (whatsmeow would acknowledge it all the same)."""
        self._database_away = True
        try:
            self.client.disconnect()
        except Exception as exc:
            log.warning("disconnect: %s", exc)
        # Then the status, whose event may wait for a statement under way to fail.
        self._set_state(p.SessionState.DISCONNECTED, DATABASE_UNAVAILABLE)

    def restarting(self, reason: str) -> None:
        """The worker is about to be replaced: stop showing an old QR or a live status."""
        self._set_state(p.SessionState.STARTING, f"restarting: {reason}")

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        try:
            self.client.stop()
        except Exception as exc:
            log.debug("stop: %s", exc)

    # -------------------------------------------------------------- commands

    def require_connected(self) -> None:
        """Refuse (409 ``SESSION_NOT_CONNECTED``) a command that needs WhatsApp while offline."""
        with self._lock:
            state = self.state
        if state != p.SessionState.CONNECTED:
            raise SessionError(
                p.ErrorCode.SESSION_NOT_CONNECTED,
                f"session {self.session_id!r} is {state.value}, not CONNECTED",
            )

    def pair_phone(self, phone: str) -> str:
        with self._lock:
            state = self.state
        if self.me is not None and state == p.SessionState.CONNECTED:
            raise SessionError(p.ErrorCode.ALREADY_LOGGED_IN, "session is already logged in")
        try:
            return self.client.PairPhone(phone, show_push_notification=True)
        except Exception as exc:
            raise SessionError(
                p.ErrorCode.WHATSAPP_ERROR, f"pairing code request failed: {exc}"
            ) from exc

    def logout(self) -> None:
        if self.me is None:
            raise SessionError(p.ErrorCode.SESSION_NOT_LOGGED_IN, "session is not logged in")
        try:
            self.client.logout()
        except Exception as exc:
            raise SessionError(p.ErrorCode.WHATSAPP_ERROR, f"logout failed: {exc}") from exc
        with self._lock:
            self.me = None
        self._set_state(p.SessionState.LOGGED_OUT, "logged out on request")


def _match_whatsmeow_log_level() -> None:
    """Have whatsmeow produce only the log lines the ``whatsmeow`` loggers keep.

    neonize tells Go the level set on its own logger, not the effective one; unset, Go
    logs at DEBUG: every stanza sent or received is rendered as XML and crosses a cgo
    callback and a queue thread, only for Python to drop it (CPU at every login and
    message; docs/benchmarks.md, "Start-up"). Must run before ``connect``.
    """
    level = logging.getLogger("whatsmeow").getEffectiveLevel()
    logging.getLogger(NEONIZE_LOGGER).setLevel(level)
