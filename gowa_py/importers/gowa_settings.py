"""GoWA's settings that a session's config can carry: webhooks, and how it behaves.

GoWA reads them from its environment or ``.env`` (``WHATSAPP_*``; command-line flags
are not on disk, so they are not seen), and v9 keeps a webhook per device in its device
registry. GoWA applies its behaviour settings to every device; gowa-py has them per
session, so each imported session gets GoWA's values, defaults included (GoWA announces
itself ``unavailable`` on connect unless told otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gowa_py.importers import ImportRefused
from gowa_py.importers.gowa_chats import GowaDevice
from gowa_py.models import SessionConfig

#: GoWA signs webhooks with this secret when WHATSAPP_WEBHOOK_SECRET is not set.
GOWA_DEFAULT_WEBHOOK_SECRET = "secret"
#: GoWA's ``WhatsappPresenceOnConnect`` default.
GOWA_DEFAULT_PRESENCE = "unavailable"
#: The spellings Go's strconv.ParseBool (viper's GetBool) takes.
_TRUE, _FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class Carry:
    """What of GoWA's settings to carry over, and GoWA's environment to read them from."""

    env: Mapping[str, str] = field(default_factory=dict)
    webhooks: bool = False
    behaviour: bool = False


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def webhooks(env: Mapping[str, str], gowa: GowaDevice | None) -> list[dict[str, Any]]:
    """GoWA's webhooks for a device: its own (v9's per-device webhook) or else the global
    ``WHATSAPP_WEBHOOK`` list, with GoWA's secret and event allow-list."""
    secret = env.get("WHATSAPP_WEBHOOK_SECRET") or GOWA_DEFAULT_WEBHOOK_SECRET
    events = _split(env.get("WHATSAPP_WEBHOOK_EVENTS", ""))
    urls = _split(env.get("WHATSAPP_WEBHOOK", ""))
    if gowa is not None and gowa.webhook_url:
        urls = [gowa.webhook_url]
        secret = gowa.webhook_secret or secret
        events = _split(gowa.webhook_events) or events
    return [{"url": url, "secret": secret, "events": events} for url in urls]


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip()
    if not value:
        return default
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ImportRefused(f"{name}={value!r} is not a boolean GoWA understands")


def behaviour(env: Mapping[str, str]) -> dict[str, Any]:
    """GoWA's global behaviour as a session's config fields."""
    settings: dict[str, Any] = {
        "auto_mark_read": _flag(env, "WHATSAPP_AUTO_MARK_READ", False),
        "auto_download_media": _flag(env, "WHATSAPP_AUTO_DOWNLOAD_MEDIA", True),
        "auto_reject_call": _flag(env, "WHATSAPP_AUTO_REJECT_CALL", False),
        "presence_on_connect": env.get("WHATSAPP_PRESENCE_ON_CONNECT", "").strip()
        or GOWA_DEFAULT_PRESENCE,
    }
    if reply := env.get("WHATSAPP_AUTO_REPLY", ""):
        settings["auto_reply"] = reply
    if proxy := env.get("WHATSAPP_PROXY", "").strip():
        settings["proxy"] = proxy
    return settings


def session_config(carry: Carry, gowa: GowaDevice | None) -> SessionConfig:
    """The config of the session a GoWA device becomes."""
    fields: dict[str, Any] = {}
    if carry.webhooks:
        fields["webhooks"] = webhooks(carry.env, gowa)
    if carry.behaviour:
        fields.update(behaviour(carry.env))
    try:
        return msgspec.convert(fields, SessionConfig)
    except msgspec.ValidationError as exc:
        raise ImportRefused(f"GoWA's settings cannot be carried over: {exc}") from exc
