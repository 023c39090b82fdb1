"""Making visible the one loss the worker cannot prevent.

whatsmeow commits a message's decryption (the Signal ratchet moves on) before it hands
the message to us, and neonize does not enable whatsmeow's decrypted-event buffer that
would keep the plaintext for a second try. A worker killed in that instant has lost the
message: the server delivers it again, but whatsmeow can no longer decrypt it ("old
counter") and drops it, logging "Ignoring message <id> ... old counter". When that
message never reached our event log, this handler records a durable ``message.lost``
event naming it, so the loss reaches webhooks and the dashboard instead of passing
silently. (A duplicate of a message we did record is a harmless redelivery.) The check
waits a few seconds: after a dropped connection the server's second copy can be refused
while the first one is still being handled, and that is no loss.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from workers.eventlog import EventLog

IGNORED = re.compile(r"Ignoring message (\S+) from (\S+) in (\S+): (.*old counter.*)")


GRACE_S = 5.0


class LostMessageReporter(logging.Handler):
    def __init__(
        self, events: EventLog, emit: Callable[..., None], grace_s: float = GRACE_S
    ) -> None:
        super().__init__(logging.WARNING)
        self._events = events
        self._emit = emit
        self._grace_s = grace_s

    def emit(self, record: logging.LogRecord) -> None:
        try:
            match = IGNORED.search(record.getMessage())
        except Exception:
            return
        if match is None:
            return
        timer = threading.Timer(self._grace_s, self._check, match.groups())
        timer.daemon = True
        timer.start()

    def _check(self, message_id: str, sender: str, chat: str, reason: str) -> None:
        if self._events.has_message(message_id):
            return
        payload: dict[str, Any] = {
            "id": message_id,
            "from": sender,
            "chat_id": chat,
            "reason": "decrypted by a worker that died before recording it; "
            f"whatsmeow cannot decrypt it again ({reason})",
        }
        self._emit("message.lost", payload, dedupe=f"lost:{message_id}")
