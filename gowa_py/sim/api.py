"""The sandbox's JSON API (``/sim/...``), served on the proxy port.

Errors are ``{"code": "...", "message": "..."}`` with a 4xx status; unexpected failures
become a 500 with the same shape (logged here, never a traceback in the response).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import Any, Protocol

from aiohttp import web

from . import phonepatches
from .calls import Calls
from .contacts import Contacts
from .errors import SimError
from .groupadmin import set_approval
from .history import valid_chats
from .jid import JID
from .network import Network
from .newsletters import NEWSLETTER_SERVER
from .newsletters import metadata as newsletter_metadata
from .newsletters import notify as notify_newsletter
from .offline import add_offline_device
from .paircode import CodePairing
from .pairing import Pairing
from .store import Phone, Store

log = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^[0-9]{5,15}$")
CHAT_RE = re.compile(r"^[0-9]+(-[0-9]+)?@(s\.whatsapp\.net|lid|g\.us)$")


class Sandbox(Protocol):
    """What the API reads and drives of the sandbox it serves (the ``SimServer``)."""

    @property
    def store(self) -> Store: ...

    @property
    def network(self) -> Network: ...

    @property
    def pairing(self) -> Pairing: ...

    @property
    def codes(self) -> CodePairing: ...

    @property
    def contacts(self) -> Contacts: ...

    @property
    def calls(self) -> Calls: ...

    @property
    def url(self) -> str: ...

    @property
    def ca_pem(self) -> str: ...

    @property
    def root_key(self) -> bytes: ...

    def create_phone(self, phone: str, push_name: str) -> None: ...

    def describe_phone(self, number: str) -> dict: ...

    def drop_connections(self) -> int: ...


SERVER_KEY: web.AppKey[Sandbox] = web.AppKey("sim_server")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as exc:
        return _error(exc.status, exc.code, str(exc))
    except web.HTTPException as exc:
        code = exc.reason.upper().replace(" ", "_")
        return _error(exc.status, code, exc.reason)
    except Exception:
        log.exception("sandbox API %s %s failed", request.method, request.path)
        return _error(500, "INTERNAL", "internal sandbox error (see the sandbox log)")


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimError("INVALID_JSON", f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise SimError("INVALID_JSON", "request body must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise SimError("VALIDATION_ERROR", f"{key!r} must be a non-empty string")
    return value


def _base64(body: dict[str, Any], key: str) -> bytes:
    try:
        return base64.b64decode(_string(body, key), validate=True)
    except binascii.Error as exc:
        raise SimError("VALIDATION_ERROR", f"{key!r} must be base64") from exc


def _phone_number(value: str) -> str:
    if not PHONE_RE.match(value):
        raise SimError("VALIDATION_ERROR", "phone must be 5 to 15 digits")
    return value


def _sim(request: web.Request) -> Sandbox:
    return request.app[SERVER_KEY]


def _phone(request: web.Request) -> Phone:
    phone = _sim(request).store.phone(_phone_number(request.match_info["phone"]))
    if phone is None:
        raise SimError("PHONE_NOT_FOUND", f"no phone {request.match_info['phone']}", 404)
    return phone


def _device_json(phone: Phone, device: int) -> dict[str, Any]:
    return {
        "device": device,
        "jid": str(JID.pn(phone.phone, device)),
        "lid": str(JID.lid(phone.lid, device)),
    }


async def create_phone(request: web.Request) -> web.Response:
    body = await _body(request)
    number = _phone_number(_string(body, "phone"))
    push_name = _string(body, "push_name", required=False) or number
    sim = _sim(request)
    if sim.store.phone(number) is not None:
        raise SimError("PHONE_EXISTS", f"phone {number} already exists", 409)
    sim.create_phone(number, push_name)
    return web.json_response(sim.describe_phone(number), status=201)


async def list_phones(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response([sim.describe_phone(p.phone) for p in sim.store.phones()])


async def get_phone(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).describe_phone(_phone(request).phone))


async def scan(request: web.Request) -> web.Response:
    phone = _phone(request)
    body = await _body(request)
    qr = _string(body, "qr")
    passkey = body.get("passkey", False)
    if not isinstance(passkey, bool):
        raise SimError("VALIDATION_ERROR", "'passkey' must be a boolean")
    if passkey:
        options = _sim(request).pairing.request_passkey(phone, qr)
        return web.json_response({"passkey_request": options}, status=202)
    device = _sim(request).pairing.scan(phone, qr)
    _sim(request).contacts.linked(phone)
    return web.json_response(_device_json(phone, device.device))


async def pair_code(request: web.Request) -> web.Response:
    phone = _phone(request)
    code = _string(await _body(request), "code")
    device = await _sim(request).codes.enter_code(phone, code)
    _sim(request).contacts.linked(phone)
    return web.json_response(_device_json(phone, device.device))


async def add_device(request: web.Request) -> web.Response:
    phone = _phone(request)
    sim = _sim(request)
    device = add_offline_device(sim.store, phone.phone)
    sim.network.announce_devices(phone)
    return web.json_response(_device_json(phone, device.device), status=201)


async def unlink(request: web.Request) -> web.Response:
    phone = _phone(request)
    number = (await _body(request)).get("device")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise SimError("VALIDATION_ERROR", "'device' must be a companion device number")
    if not _sim(request).network.unlink(phone.phone, number):
        raise SimError("DEVICE_NOT_FOUND", f"phone {phone.phone} has no device {number}", 404)
    return web.json_response({"phone": phone.phone, "device": number, "unlinked": True})


async def send(request: web.Request) -> web.Response:
    phone = _phone(request)
    body = await _body(request)
    to = _phone_number(_string(body, "to"))
    text = _string(body, "text")
    sim = _sim(request)
    if sim.store.phone(to) is None:
        raise SimError("PHONE_NOT_FOUND", f"no phone {to}", 404)
    result = await sim.contacts.send_text(phone, to, text)
    return web.json_response(result)


async def send_document(request: web.Request) -> web.Response:
    """A document from a simulated contact; ``id`` sets the message id the recipient sees
    (any string: what a hostile client could send)."""
    phone = _phone(request)
    body = await _body(request)
    to = _phone_number(_string(body, "to"))
    data = _base64(body, "data")
    filename = _string(body, "filename", required=False) or "file.bin"
    mimetype = _string(body, "mimetype", required=False) or "application/octet-stream"
    message_id = _string(body, "id") if "id" in body else None
    sim = _sim(request)
    if sim.store.phone(to) is None:
        raise SimError("PHONE_NOT_FOUND", f"no phone {to}", 404)
    result = await sim.contacts.send_document(phone, to, data, filename, mimetype, message_id)
    return web.json_response(result)


async def set_picture(request: web.Request) -> web.Response:
    """The phone sets its profile picture, as its owner would in the app."""
    phone = _phone(request)
    data = _base64(await _body(request), "data")
    picture_id = _sim(request).store.set_picture(phone.phone, data)
    return web.json_response({"phone": phone.phone, "picture_id": picture_id})


CHAT_SETTINGS = {
    "archived": phonepatches.archive,
    "pinned": phonepatches.pin,
    "muted": phonepatches.mute,
}


async def set_chat_setting(request: web.Request) -> web.Response:
    """The phone archives, pins or mutes a chat: an app-state patch for its companions."""
    phone = _phone(request)
    body = await _body(request)
    chat = _string(body, "chat")
    if not CHAT_RE.match(chat):
        raise SimError("VALIDATION_ERROR", "'chat' must be a user, LID or group JID")
    settings = [name for name in CHAT_SETTINGS if name in body]
    if len(settings) != 1 or not isinstance(body[settings[0]], bool):
        raise SimError("VALIDATION_ERROR", "exactly one of archived, pinned, muted: true or false")
    change = CHAT_SETTINGS[settings[0]](chat, body[settings[0]])
    version = phonepatches.upload(_sim(request).network, phone, change)
    return web.json_response(
        {"phone": phone.phone, "collection": change.collection, "version": version}
    )


async def save_contact(request: web.Request) -> web.Response:
    """The phone saves a contact's name in its address book: an app-state patch too."""
    phone = _phone(request)
    body = await _body(request)
    jid = _string(body, "jid")
    if not CHAT_RE.match(jid) or jid.endswith("@g.us"):
        raise SimError("VALIDATION_ERROR", "'jid' must be a user or LID JID")
    full_name = _string(body, "full_name")
    first_name = _string(body, "first_name", required=False) or (full_name.split() or [""])[0]
    change = phonepatches.contact(jid, full_name, first_name)
    version = phonepatches.upload(_sim(request).network, phone, change)
    return web.json_response(
        {"phone": phone.phone, "collection": change.collection, "version": version}
    )


async def group_approval(request: web.Request) -> web.Response:
    """The group's creator switches join approval from their phone (neonize, unlike
    whatsmeow, has no call for it)."""
    sim = _sim(request)
    group = sim.store.groups.group(request.match_info["gid"])
    if group is None:
        raise SimError("GROUP_NOT_FOUND", f"no group {request.match_info['gid']}", 404)
    required = (await _body(request)).get("required")
    if not isinstance(required, bool):
        raise SimError("VALIDATION_ERROR", "'required' must be true or false")
    creator = sim.store.phone(group.creator)
    assert creator is not None
    set_approval(sim.network, group.gid, creator, required)
    return web.json_response({"group": group.gid, "required": required})


async def call(request: web.Request) -> web.Response:
    """The phone calls ``to``: every device of ``to`` gets the offer."""
    phone = _phone(request)
    to = _phone_number(_string(await _body(request), "to"))
    sim = _sim(request)
    callee = sim.store.phone(to)
    if callee is None:
        raise SimError("PHONE_NOT_FOUND", f"no phone {to}", 404)
    return web.json_response(sim.calls.offer(phone, callee).as_dict(), status=201)


async def get_call(request: web.Request) -> web.Response:
    found = _sim(request).calls.calls.get(request.match_info["call_id"])
    if found is None:
        raise SimError("CALL_NOT_FOUND", f"no call {request.match_info['call_id']}", 404)
    return web.json_response(found.as_dict())


async def create_newsletter(request: web.Request) -> web.Response:
    """A phone creates a channel in the app (GoWA has no route to create one)."""
    body = await _body(request)
    sim = _sim(request)
    owner = sim.store.phone(_phone_number(_string(body, "owner")))
    if owner is None:
        raise SimError("PHONE_NOT_FOUND", f"no phone {body['owner']}", 404)
    name = _string(body, "name")
    created = sim.store.newsletters.create(
        name, _string(body, "description", required=False), owner.phone
    )
    return web.json_response(
        {"jid": f"{created.nid}@{NEWSLETTER_SERVER}", "invite": created.invite}, status=201
    )


async def follow_newsletter(request: web.Request) -> web.Response:
    """A phone follows a channel in the app; its linked devices are told (``mex``)."""
    sim = _sim(request)
    item = sim.store.newsletters.newsletter(request.match_info["nid"])
    if item is None:
        raise SimError("NEWSLETTER_NOT_FOUND", f"no newsletter {request.match_info['nid']}", 404)
    phone = sim.store.phone(_phone_number(_string(await _body(request), "phone")))
    if phone is None:
        raise SimError("PHONE_NOT_FOUND", "no such phone", 404)
    sim.store.newsletters.follow(item.nid, phone.phone)
    joined = newsletter_metadata(sim.network, item, phone.phone)
    notify_newsletter(sim.network, phone.phone, "xwa2_notify_newsletter_on_join", joined)
    return web.json_response({"jid": joined["id"], "phone": phone.phone})


async def send_history(request: web.Request) -> web.Response:
    """The phone sends its linked devices a history sync of the given chats now."""
    phone = _phone(request)
    chats = _chats(await _body(request))
    return web.json_response(await _sim(request).contacts.send_history(phone, chats))


async def set_history(request: web.Request) -> web.Response:
    """The chats the phone sends every companion that links from now on."""
    phone = _phone(request)
    chats = _chats(await _body(request))
    _sim(request).contacts.histories[phone.phone] = chats
    return web.json_response({"phone": phone.phone, "chats": len(chats)})


def _chats(body: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        return valid_chats(body.get("chats"))
    except ValueError as exc:
        raise SimError("VALIDATION_ERROR", str(exc)) from exc


async def faults(request: web.Request) -> web.Response:
    body = await _body(request)
    sim = _sim(request)
    delay = body.get("delay_ms", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 60000:
        raise SimError("VALIDATION_ERROR", "'delay_ms' must be an integer 0..60000")
    sim.network.faults.delay_ms = delay
    dropped = 0
    if body.get("drop_connections"):
        dropped = sim.drop_connections()
    return web.json_response({**sim.network.faults.as_dict(), "dropped": dropped})


async def info(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response(
        {"proxy": sim.url, "ca_pem": sim.ca_pem, "root_key": sim.root_key.hex()}
    )


async def healthz(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response(
        {
            "status": "ok",
            "connections": len(sim.network.connections),
            "online": len(sim.network.online),
            # Every device's logins that ended a live connection of it: two connections
            # of one device at once, what a cluster's fault tests assert never happens.
            "replaced": sum(sim.network.replaced.values()),
        }
    )


def build_app(sim: Sandbox) -> web.Application:
    app = web.Application(middlewares=[errors_middleware])
    app[SERVER_KEY] = sim
    app.router.add_post("/sim/phones", create_phone)
    app.router.add_get("/sim/phones", list_phones)
    app.router.add_get("/sim/phones/{phone}", get_phone)
    app.router.add_post("/sim/phones/{phone}/scan", scan)
    app.router.add_post("/sim/phones/{phone}/pair-code", pair_code)
    app.router.add_post("/sim/phones/{phone}/devices", add_device)
    app.router.add_post("/sim/phones/{phone}/unlink", unlink)
    app.router.add_post("/sim/phones/{phone}/send", send)
    app.router.add_post("/sim/phones/{phone}/send-document", send_document)
    app.router.add_put("/sim/phones/{phone}/picture", set_picture)
    app.router.add_post("/sim/phones/{phone}/chat-settings", set_chat_setting)
    app.router.add_post("/sim/phones/{phone}/contacts", save_contact)
    app.router.add_post("/sim/groups/{gid}/approval", group_approval)
    app.router.add_post("/sim/phones/{phone}/call", call)
    app.router.add_get("/sim/calls/{call_id}", get_call)
    app.router.add_post("/sim/newsletters", create_newsletter)
    app.router.add_post("/sim/newsletters/{nid}/followers", follow_newsletter)
    app.router.add_post("/sim/phones/{phone}/history", send_history)
    app.router.add_put("/sim/phones/{phone}/history", set_history)
    app.router.add_post("/sim/faults", faults)
    app.router.add_get("/sim/info", info)
    app.router.add_get("/sim/healthz", healthz)
    return app
