"""App-state changes (pin, archive, star, delete for me): refused, naming neonize's limit.

Each is an app-state patch in its collection (``regular_low`` for pin and archive,
``regular_high`` for star and delete for me). The only neonize 0.5.2 call that takes one,
``send_app_state``, loses the collection on the way to whatsmeow: its Go ``DecodePatchInfo``
compares the patch type's pointer with freshly made pointers (never equal) and has no case
for ``regular_low`` or ``regular_high`` at all, so whatsmeow sends a collection without a
name, which WhatsApp refuses (``400 bad-request``). Its one named patch is the push name
(``SetPushName``), and the library exports no call that sends a raw iq. Sending a request
that cannot succeed would only cost a round trip, so these operations answer at once;
``tests/sim/test_device_zero.py`` fails when a neonize build starts naming the collection.
"""

from __future__ import annotations

from gowa_py import protocol as p
from workers.errors import SessionError
from workers.operations.context import fail


def unsupported(what: str) -> SessionError:
    """The error for an operation that needs an app-state patch neonize cannot send."""
    return fail(
        p.ErrorCode.NOT_SUPPORTED,
        f"{what} is not available: it is a WhatsApp app-state patch, and neonize 0.5.2 sends "
        "every app-state patch but the push name without its collection name (its "
        "DecodePatchInfo never matches the patch type), which WhatsApp refuses",
    )
