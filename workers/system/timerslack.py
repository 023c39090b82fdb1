"""Let the kernel gather this process's short sleeps into fewer wake-ups (timer slack).

While a session's goroutines are busy, Go's ``sysmon`` thread sleeps 20 µs at a time and
hands the one Go scheduler slot (``GOMAXPROCS=1``) to a fresh thread whenever a call out to
C outlasts that; at the kernel's default slack (50 µs) that is tens of thread switches per
message sent. The slack is how late the kernel may end a sleep; ``PR_SET_TIMERSLACK`` sets
it for the calling thread, and threads and processes started afterwards inherit it, so the
zygote sets it once for all its workers and a plain worker before it loads Go. Why the
gateway's default is 5 ms, with the figures: ``worker_timer_slack_ms`` in
``config/gowa.example.toml`` and docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import os

from gowa_py import protocol as p
from workers.system.prctl import prctl

log = logging.getLogger("gowa.worker")

PR_SET_TIMERSLACK = 29


def apply() -> int | None:
    """Widen this thread's timer slack as the gateway asks; the slack set, or None."""
    raw = os.environ.get(p.TIMER_SLACK_ENV)
    if not raw:
        return None
    slack = int(raw)
    try:
        prctl(PR_SET_TIMERSLACK, slack)
    except OSError as exc:
        log.warning("timer slack left as it was: %s", exc.strerror)
        return None
    return slack
