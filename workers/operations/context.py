"""The dispatch of an operation struct to its handler, and the context handlers get.

Handlers run in a thread (neonize calls block) and return GoWA's ``results`` shape. A
neonize failure becomes ``WHATSAPP_ERROR`` (502) with WhatsApp's message; a missing
message or an unsupported call has its own code, so the gateway never answers 500 for a
WhatsApp-side problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from neonize.proto import Neonize_pb2 as pb

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.errors import SessionError
from workers.jid import parse_jid
from workers.session import Emit

if TYPE_CHECKING:
    from gowa_py.storage.interfaces import ChatStorage, WhatsmeowStorage
    from workers.session import WhatsAppSession

log = logging.getLogger("gowa.worker.operations")

OpT = TypeVar("OpT", bound=ops.Op)
Handler = Callable[["Context", Any], p.OperationResult]
HANDLERS: dict[type[ops.Op], tuple[Handler, bool]] = {}


def handles(
    op_type: type[OpT], *, connected: bool = True
) -> Callable[
    [Callable[[Context, OpT], p.OperationResult]], Callable[[Context, OpT], p.OperationResult]
]:
    """Register the handler of one operation; ``connected`` ones need a live session."""

    def register(
        func: Callable[[Context, OpT], p.OperationResult],
    ) -> Callable[[Context, OpT], p.OperationResult]:
        HANDLERS[op_type] = (func, connected)
        return func

    return register


def ok(results: Any = None, message: str = "Success") -> p.OperationResult:
    return p.OperationResult(results=results, message=message)


def fail(code: p.ErrorCode, message: str) -> SessionError:
    return SessionError(code, message)


class Context:
    """What a handler needs: the session, its chat store, its settings and media folder."""

    def __init__(
        self,
        session: WhatsAppSession,
        store: ChatStorage,
        whatsmeow: WhatsmeowStorage,
        settings: ops.ApplySettings,
        session_dir: Path,
        emit: Emit,
        max_download_bytes: int = 100 * 1024 * 1024,
    ) -> None:
        self.session = session
        self.client = session.client
        self.store = store
        self.whatsmeow = whatsmeow
        self.settings = settings
        self.media_dir = session_dir / "media"
        self.max_download_bytes = max_download_bytes
        self.emit = emit
        #: Event handlers whose bound methods neonize holds only weakly (``WeakMethod``).
        self.handlers: list[object] = []
        #: Threads for what events start (the automations), not requests.
        self.background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="auto")

    def run(self, op: ops.Op) -> p.OperationResult:
        """Run one operation; blocks while its handler waits for WhatsApp."""
        entry = HANDLERS.get(type(op))
        if entry is None:
            raise fail(p.ErrorCode.NOT_SUPPORTED, f"{type(op).__name__} is not handled by workers")
        handler, connected = entry
        if connected:
            self.session.require_connected()
        try:
            return handler(self, op)
        except SessionError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s: %s", type(op).__name__, type(exc).__name__, exc)
            raise fail(p.ErrorCode.WHATSAPP_ERROR, f"{type(exc).__name__}: {exc}".strip()) from exc

    def close(self) -> None:
        self.background.shutdown(wait=False, cancel_futures=True)

    def me(self) -> pb.JID:
        me = self.session.me
        if me is None:
            raise fail(p.ErrorCode.SESSION_NOT_LOGGED_IN, "session is not logged in")
        return parse_jid(me.jid)
