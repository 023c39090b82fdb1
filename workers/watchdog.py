"""Detecting a connection that looks up but carries nothing (WAHA #2151, Evolution #1113).

whatsmeow pings the server every 20-30 s and reports a failed ping as KeepAliveTimeout
and the first good one after that as KeepAliveRestored. A session that stays in the
failed state longer than the threshold is reconnected by the worker, with a reason.
"""

from __future__ import annotations

import threading


class SilenceWatch:
    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self._lock = threading.Lock()
        self._silent_since: float | None = None

    def keepalive_failed(self, now: float) -> None:
        with self._lock:
            if self._silent_since is None:
                self._silent_since = now

    def traffic(self) -> None:
        """Anything from the server (a restored keepalive, a message) proves the link."""
        with self._lock:
            self._silent_since = None

    def overdue(self, now: float) -> float | None:
        """Seconds of silence when past the threshold (and resets), else None."""
        if self.threshold_s <= 0:
            return None
        with self._lock:
            if self._silent_since is None or now - self._silent_since < self.threshold_s:
                return None
            silent = now - self._silent_since
            self._silent_since = None
            return silent
