"""A brake on credential guessing: too many failed authentications from one client address
within a window and that address is refused (429 with ``Retry-After``) until the oldest
failure leaves the window.

Shared by every authenticated route and the dashboard's login form, so one budget of
guesses covers both. The address is the TCP peer (``X-Forwarded-For`` is the client's to
write, so it is never trusted); IPv6 clients are counted per /64, the block a single host
is commonly given, so rotating addresses inside it does not reset the count.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 10_000


def client_address(remote: str | None) -> str:
    """The unit failures are counted by: the IPv4 address, or the IPv6 /64."""
    if not remote:
        return "?"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailureThrottle:
    """Failed authentications per address in a sliding window; ``allowed`` 0 turns it off."""

    def __init__(
        self,
        allowed: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.allowed = allowed
        self.window = window
        self._clock = clock
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int:
        """Whole seconds until ``address`` may try again; 0 when it is not blocked."""
        failures = self._failures.get(address)
        if not self.allowed or not failures:
            return 0
        now = self._clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return 0
        if len(failures) < self.allowed:
            return 0
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str) -> None:
        if not self.allowed:
            return
        failures = self._failures.get(address)
        if failures is None:
            if len(self._failures) >= self._max_addresses:
                # The least recently failing address goes: memory stays bounded.
                self._failures.popitem(last=False)
            failures = self._failures[address] = deque(maxlen=self.allowed)
        else:
            self._failures.move_to_end(address)
        failures.append(self._clock())
