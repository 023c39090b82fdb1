"""Bringing sessions in from other WhatsApp gateways (``gowa import ...``).

Run by the command line against a stopped gateway's data dir; nothing here is imported
by the gateway, the supervisor or the workers.
"""

from __future__ import annotations

from gowa_py.errors import GowaError


class ImportRefused(GowaError):
    """The import cannot go ahead; nothing was written (the message says why)."""
