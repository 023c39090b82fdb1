"""Typed shapes of the public API: request bodies and the per-session configuration.

msgspec validates incoming JSON against these structs, so a wrong type or an unknown
field is reported with its path (``VALIDATION_ERROR`` naming the field).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from yarl import URL

from gowa_py.ids import SESSION_ID_PATTERN
from gowa_py.operations import ApplySettings

SessionIdField = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=2048)]
ProxyUrl = Annotated[str, msgspec.Meta(pattern=r"^(https?|socks5)://[^\s]+$", max_length=2048)]
AutoReply = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
PresenceOnConnect = Literal["available", "unavailable", "none"]
RetentionDays = Annotated[int, msgspec.Meta(ge=1, le=36500)]


#: What every response shows in place of a secret that is set (webhook secrets, a proxy's
#: password): secrets are write-only. Sent back unchanged (the dashboard's config editor
#: does), it keeps the stored secret.
SECRET_MASK = "****"


class Webhook(msgspec.Struct, forbid_unknown_fields=True):
    url: HttpUrl
    #: None or absent (or the mask) keeps the secret of the hook with the same URL on a
    #: PATCH; "" clears it (deliveries are then signed with the gateway's webhook_secret).
    secret: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    events: list[Annotated[str, msgspec.Meta(max_length=64)]] = []

    def public(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "secret": SECRET_MASK if self.secret else None,
            "events": list(self.events),
        }


def mask_proxy(proxy: str | None) -> str | None:
    """The proxy URL with its password, if any, replaced by the mask."""
    if proxy is None:
        return None
    try:
        url = URL(proxy)
        return str(url.with_password(SECRET_MASK)) if url.password else proxy
    except ValueError:  # not stored through the API's validation: show nothing of it
        return SECRET_MASK


class SessionConfig(msgspec.Struct, forbid_unknown_fields=True):
    webhooks: list[Webhook] = []
    proxy: ProxyUrl | None = None
    auto_start: bool = True
    idle_timeout: Annotated[int, msgspec.Meta(ge=60, le=10**9)] | None = None
    # What GoWA only has globally; reach the worker through WorkerConfig (and live on PATCH).
    auto_reply: AutoReply | None = None
    auto_mark_read: bool = False
    auto_download_media: bool = True
    auto_reject_call: bool = False
    presence_on_connect: PresenceOnConnect = "available"
    chat_retention_days: RetentionDays | None = None

    def public(self) -> dict[str, Any]:
        """What responses show: the config with every secret masked."""
        data = msgspec.to_builtins(self)
        data["webhooks"] = [hook.public() for hook in self.webhooks]
        data["proxy"] = mask_proxy(self.proxy)
        return data

    def keeping_secrets(self, old: SessionConfig) -> SessionConfig:
        """This config as set over ``old``: a webhook without a secret (absent, null or the
        mask) keeps the secret ``old`` has for the same URL, a masked proxy the old proxy.

        Never by position: a secret must not follow a hook to a URL it was not given for.
        """
        secrets = {hook.url: hook.secret for hook in old.webhooks}
        hooks = [
            msgspec.structs.replace(hook, secret=secrets.get(hook.url))
            if hook.secret is None or hook.secret == SECRET_MASK
            else hook
            for hook in self.webhooks
        ]
        proxy = self.proxy
        if proxy is not None and proxy != old.proxy and proxy == mask_proxy(old.proxy):
            proxy = old.proxy
        return msgspec.structs.replace(self, webhooks=hooks, proxy=proxy)

    def worker_settings(self) -> ApplySettings:
        """The part of the config a worker acts on (sent at start and on every PATCH)."""
        fields = {name: getattr(self, name) for name in ApplySettings.__struct_fields__}
        return msgspec.convert(fields, ApplySettings)


class SessionConfigPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH body: only the fields present are changed (``UNSET`` means 'leave as is')."""

    webhooks: list[Webhook] | msgspec.UnsetType = msgspec.UNSET
    proxy: ProxyUrl | msgspec.UnsetType | None = msgspec.UNSET
    auto_start: bool | msgspec.UnsetType = msgspec.UNSET
    idle_timeout: Annotated[int, msgspec.Meta(ge=60, le=10**9)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    auto_reply: AutoReply | msgspec.UnsetType | None = msgspec.UNSET
    auto_mark_read: bool | msgspec.UnsetType = msgspec.UNSET
    auto_download_media: bool | msgspec.UnsetType = msgspec.UNSET
    auto_reject_call: bool | msgspec.UnsetType = msgspec.UNSET
    presence_on_connect: PresenceOnConnect | msgspec.UnsetType = msgspec.UNSET
    chat_retention_days: RetentionDays | msgspec.UnsetType | None = msgspec.UNSET

    def apply(self, config: SessionConfig) -> SessionConfig:
        changes = {
            field: value
            for field in self.__struct_fields__
            if (value := getattr(self, field)) is not msgspec.UNSET
        }
        return msgspec.structs.replace(config, **changes)


class CreateSession(msgspec.Struct, forbid_unknown_fields=True):
    session_id: SessionIdField
    config: SessionConfig = msgspec.field(default_factory=SessionConfig)
    start: bool = True


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/keys``: a scoped API key for these sessions, ``read`` (GET/HEAD) or
    ``full``."""

    sessions: Annotated[list[SessionIdField], msgspec.Meta(min_length=1, max_length=1000)]
    scope: Literal["read", "full"] = "full"
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


class PatchSession(msgspec.Struct, forbid_unknown_fields=True):
    config: SessionConfigPatch = msgspec.field(default_factory=SessionConfigPatch)


class AddDevice(msgspec.Struct):
    """GoWA v9's ``POST /devices`` body."""

    device_id: SessionIdField | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_events: str | None = None
    webhook_insecure_skip_verify: bool = False


class DeviceWebhook(msgspec.Struct):
    """GoWA v9's ``PATCH /devices/{id}/webhook`` body."""

    webhook_url: str
    webhook_secret: str | None = None
    webhook_events: str | None = None
    webhook_insecure_skip_verify: bool = False


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)
