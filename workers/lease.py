"""The worker's own end when its node stops renewing the session's lease.

In a cluster the node kills a worker whose lease it could not renew in time; a node that
is frozen (SIGSTOP, a stalled VM) or whose event loop is stuck cannot. So the node also
tells the worker, with every renewal, until when the lease is its own
(``protocol.LeaseRenewed``), and the worker disconnects by itself at that time unless
told of a later one: the device is never connected from two nodes at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: The longest sleep between looks at the clock (a later time may have arrived).
_TICK_S = 1.0


class LeaseClock:
    def __init__(self, valid_until: float) -> None:
        self.valid_until = valid_until

    def extend(self, valid_until: float) -> None:
        """A renewal (any thread); an older time arriving late changes nothing."""
        self.valid_until = max(self.valid_until, valid_until)

    def lapsed(self) -> bool:
        return time.monotonic() >= self.valid_until

    async def watch(self, lapsed: Callable[[], None]) -> None:
        """Call ``lapsed`` once the lease's time is past without a renewal."""
        while not self.lapsed():
            await asyncio.sleep(min(_TICK_S, max(0.0, self.valid_until - time.monotonic())))
        lapsed()
