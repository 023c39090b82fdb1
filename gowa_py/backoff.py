"""Exponential backoff and the crash-loop window, shared by the supervisor and the workers."""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field


def backoff_delay(
    attempt: int, *, base: float = 1.0, cap: float = 60.0, jitter: float = 0.0
) -> float:
    """Delay before retry number ``attempt`` (0-based): base·2^attempt, capped, with ±jitter share.

    Jitter spreads retries of many sessions so they do not hit a server in lockstep.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    delay = min(cap, base * (2 ** min(attempt, 32)))
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, delay)


@dataclass
class CrashWindow:
    """Counts crashes inside a sliding window; a session that crashes too often is FAILED."""

    limit: int = 5
    window_s: float = 300.0
    _times: deque[float] = field(default_factory=deque)

    def record(self, now: float | None = None) -> bool:
        """Record a crash; return True when the limit is reached inside the window."""
        now = time.monotonic() if now is None else now
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times) >= self.limit

    @property
    def recent(self) -> int:
        """Crashes currently inside the window (used as the backoff attempt number)."""
        return len(self._times)

    def reset(self) -> None:
        self._times.clear()
