"""GoWA's ``/newsletter/*`` operations."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

NEWSLETTER = "newsletter"

ROUTES = [
    OpRoute(
        "POST",
        "/newsletter/unfollow",
        ops.UnfollowNewsletter,
        NEWSLETTER,
        "Unfollow",
        body="json",
    ),
    OpRoute("GET", "/newsletter/messages", ops.NewsletterMessages, NEWSLETTER, "Messages"),
]
