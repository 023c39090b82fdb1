"""Every operation of GoWA v9's openapi.yaml, walked end to end against the sandbox.

A client written for GoWA, pointed at the gateway: each operation gets a valid request
(GoWA's unprefixed routes, the session ``default``, a second paired session as the
other party, a group and messages made during the walk, small generated media) and must
answer 200 with a result shaped as the YAML's response schema says. The few operations
the sandbox cannot serve are in :data:`UNSUPPORTED` with the reason (also listed in
docs/sandbox.md) and must answer a clean ``{"code","message"}`` error instead.

The walk is one ordered test because its steps build on each other (a group is created
before it is renamed, the session logs out last); it reports every failing step at once.
"""

from __future__ import annotations

import base64
import io
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema_rs
import pytest
import yaml

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.procs import Gateway, wait_until
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "tests" / "data" / "gowa-openapi.yaml").read_text())
METHODS = ("get", "post", "put", "patch", "delete")

ME, PEER, THIRD, SPARE = "15550000611", "15550000612", "15550000613", "15550000614"
PEER_JID, THIRD_JID = f"{PEER}@s.whatsapp.net", f"{THIRD}@s.whatsapp.net"

APP_STATE = (
    "an app-state patch: neonize 0.5.2's send_app_state sends every patch but the push name "
    "without its collection name (its DecodePatchInfo never matches the type), which WhatsApp "
    "refuses, so the worker answers before sending (tests/sim/test_device_zero.py)"
)
#: Operations the sandbox cannot serve, and why (docs/sandbox.md repeats this list). The
#: walk still sends each a valid request and expects a clean error envelope.
UNSUPPORTED: dict[str, tuple[str, str]] = {
    "POST /app/passkey/response": (
        "PASSKEY_NOT_PENDING",
        "no passkey login is ever pending: neonize 0.5.2 exports no call to answer one "
        "(whatsmeow's SendPasskeyResponse), so a passkey request stops the session with "
        "PASSKEY_REQUIRED (tests/e2e/test_passkey.py)",
    ),
    "POST /app/passkey/confirm": ("PASSKEY_NOT_PENDING", "as /app/passkey/response"),
    "POST /message/{message_id}/star": ("NOT_SUPPORTED", APP_STATE),
    "POST /message/{message_id}/unstar": ("NOT_SUPPORTED", APP_STATE),
    "POST /message/{message_id}/delete": ("NOT_SUPPORTED", APP_STATE),
    "POST /chat/{chat_jid}/pin": ("NOT_SUPPORTED", APP_STATE),
    "POST /chat/{chat_jid}/archive": ("NOT_SUPPORTED", APP_STATE),
    "GET /user/business-profile": (
        "NOT_SUPPORTED",
        "neonize 0.5.2 exports no business-profile call (whatsmeow's GetBusinessProfile)",
    ),
    "POST /group/participant-requests/approve": (
        "NOT_SUPPORTED",
        "neonize 0.5.2 exports no call to answer a join request "
        "(whatsmeow's UpdateGroupRequestParticipants)",
    ),
    "POST /group/participant-requests/reject": ("NOT_SUPPORTED", "as .../approve"),
    **{
        key: ("NOT_FOUND", "the Chatwoot integration is not part of gowa-py (no route)")
        for key in (
            "POST /chatwoot/sync",
            "GET /chatwoot/sync/status",
            "POST /chatwoot/webhook",
            "POST /chatwoot/webhook/{device_id}",
            "GET /chatwoot/configs",
            "GET /devices/{device_id}/chatwoot/config",
            "PUT /devices/{device_id}/chatwoot/config",
            "DELETE /devices/{device_id}/chatwoot/config",
        )
    },
}


def yaml_operations() -> set[str]:
    return {
        f"{method.upper()} {path}"
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }


def operation(key: str) -> dict[str, Any]:
    method, path = key.split(" ", 1)
    return SPEC["paths"][path][method.lower()]


def openapi_to_json_schema(node: Any, complete: bool = False) -> Any:
    """OpenAPI 3.0's ``nullable`` as JSON Schema's type list; the rest is draft 4.
    ``complete``: every documented property is required (what a client reads is there)."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item, complete) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_json_schema(v, complete) for k, v in node.items() if k != "example"}
    if complete and "properties" in out:
        out["required"] = sorted(out["properties"])
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def answer_components() -> dict[str, Any]:
    """The YAML's components for answers, where the YAML and the running GoWA (what clients
    were written against) differ corrected to GoWA: GenericResponse types ``results`` as a
    string (example null) but GoWA's handlers put nil or a map there (``{"device_id"}`` for
    logout and reconnect, ``{"group_id"}`` for joins); a channel without a picture has
    ``"picture": null`` (whatsmeow's ``*ProfilePictureInfo``)."""
    components = openapi_to_json_schema(SPEC["components"], complete=True)
    components["schemas"]["GenericResponse"]["properties"]["results"] = {}
    newsletter = components["schemas"]["Newsletter"]["properties"]["thread_metadata"]
    newsletter["properties"]["picture"]["type"] = ["object", "null"]
    return components


ANSWERS = answer_components()
REQUESTS = openapi_to_json_schema(SPEC["components"])

#: Documented keys that GoWA itself leaves out, so no client can rely on them:
#: (operation or "*", JSON path of the object, key) -> why.
OMITTED = {
    ("*", "", "status"): 'GoWA\'s ResponseData.Status is json:"-" (the HTTP status only)',
    ("GET /user/info", "/results", "*"): "GoWA wraps the user's fields in results.data",
    ("GET /message/{message_id}/download", "/results", "file_url"): "GoWA sets it only for "
    "files under its statics directory",
    ("GET /chat/{chat_jid}/messages", "/results/data/*", "call_metadata"): "omitempty in GoWA: "
    "only call log messages have it",
    **{
        ("GET /user/my/groups", "/results/data/*", name): "neonize's GroupInfo does not carry it "
        "(left out rather than guessed)"
        for name in ("CreatorCountryCode", "MemberAddMode", "Suspended", "IsJoinApprovalRequired")
    },
}


def omitted(key: str, path: str, name: str) -> bool:
    generic = re.sub(r"/\d+(?=/|$)", "/*", path)
    return any(
        (op, where, field) in OMITTED
        for op in (key, "*")
        for where in (path, generic)
        for field in (name, "*")
    )


#: Operations whose answer names the message they sent.
MAKES_A_MESSAGE = {
    key for key in yaml_operations() if key.startswith("POST /send/") and "presence" not in key
} | {f"POST /message/{{message_id}}/{verb}" for verb in ("reaction", "update", "forward", "revoke")}


def answer_types(key: str) -> list[str]:
    return list(operation(key)["responses"]["200"].get("content", {}))


def json_answer(key: str) -> bool:
    return "application/json" in answer_types(key)


def shape_errors(key: str, body: Any) -> list[str]:
    content = operation(key)["responses"]["200"].get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    check = jsonschema_rs.Draft4Validator(
        {**openapi_to_json_schema(schema, complete=True), "components": ANSWERS}
    )
    errors = []
    for error in check.iter_errors(body):
        path = "".join(f"/{part}" for part in error.instance_path)
        missing = re.fullmatch(r'"(.+)" is a required property', error.message)
        if not (missing and omitted(key, path, missing.group(1))):
            errors.append(f"{path or '/'}: {error.message}")
    return errors


def request_errors(key: str, body: Any) -> list[str]:
    """Our own request must be valid for the YAML too, or the walk proves nothing."""
    content = operation(key).get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None or body is None:
        return []
    check = jsonschema_rs.Draft4Validator(
        {**openapi_to_json_schema(schema), "components": REQUESTS}
    )
    return [f"request {e.instance_path}: {e.message}" for e in check.iter_errors(body)]


# -- media, made here


def jpeg(color: tuple[int, int, int] = (200, 40, 40), size: int = 64) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="JPEG")
    return out.getvalue()


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (30, 200, 30, 255)).save(out, format="PNG")
    return out.getvalue()


def ffmpeg(tmp: Path, suffix: str, *args: str) -> bytes:
    out = tmp / f"{uuid.uuid4().hex}{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True, capture_output=True
    )
    return out.read_bytes()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, str, bytes]]):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    for name, (filename, ctype, data) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# -- the walk


@dataclass
class Walk:
    """What the walk has made so far, and the calls it has made."""

    gw: Gateway
    sandbox: SandboxProcess
    tmp: Path
    values: dict[str, Any] = field(default_factory=dict)
    walked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def call(
        self,
        key: str,
        url: str,
        body: Any = None,
        files: dict[str, tuple[str, str, bytes]] | None = None,
        form: dict[str, str] | None = None,
        device: str | None = None,
    ) -> Any:
        """Call one operation; its result when it answered 200 and as the YAML says."""
        self.walked.append(key)
        headers = {"X-Device-Id": device} if device else {}
        raw = None
        if files is not None or form is not None:
            raw, more = multipart(form or {}, files or {})
            headers.update(more)
        errors = request_errors(key, body)
        status, answer = self.gw.http.call(
            key.split()[0], url, body, headers=headers, raw=raw, timeout=60
        )
        if key in UNSUPPORTED:
            if not clean_error(status, answer):
                errors.append(f"not a clean error: {status} {answer!r:.300}")
            elif answer["code"] != UNSUPPORTED[key][0]:
                errors.append(f"{answer['code']} where {UNSUPPORTED[key][0]} was expected")
            if status == 200:
                errors.append("succeeds now: move it from UNSUPPORTED to the walk")
        elif status != 200:
            errors.append(f"status {status}: {answer!r:.300}")
        elif not json_answer(key):
            if not isinstance(answer, bytes):
                errors.append(f"a JSON answer where the YAML has {answer_types(key)}")
        elif not isinstance(answer, dict):
            errors.append(f"not a JSON object: {answer!r:.300}")
        else:
            if answer.get("code") != "SUCCESS":
                errors.append(f"code {answer.get('code')!r}")
            errors += shape_errors(key, answer)
            if key in MAKES_A_MESSAGE and not (answer.get("results") or {}).get("message_id"):
                errors.append("no message_id")
        if errors:
            self.failures.append(f"{key} ({url}): " + "; ".join(errors))
            return None
        return answer.get("results") if isinstance(answer, dict) else answer

    def peer(self, method: str, path: str, body: Any = None) -> Any:
        """A setup call of the other party (not a walked step)."""
        status, answer = self.gw.http.call(method, f"/api/peer{path}", body)
        assert status == 200, (path, status, answer)
        return answer["results"]


def made(result: Any, name: str) -> str:
    """An id a step made, for the steps after it; a step that failed (already reported)
    leaves one that fails them too rather than skipping them."""
    return result[name] if result else "MISSING"


def clean_error(status: int, answer: Any) -> bool:
    return (
        400 <= status < 600
        and status != 500
        and isinstance(answer, dict)
        and {"code", "message"} <= set(answer)
        and "Traceback" not in answer["message"]
    )


def stored_ids(gw: Gateway, session: str, chat: str) -> set[str]:
    status, answer = gw.http.get(f"/api/{session}/chat/{chat}/messages?limit=100")
    return {m["id"] for m in answer["results"]["data"]} if status == 200 else set()


def app_and_devices(w: Walk) -> None:
    if w.call("GET /health", "/health") not in (None, b"OK"):
        w.failures.append("GET /health: not GoWA's plain OK")
    info = w.call("GET /app/info", "/app/info")
    assert info is None or info["max_image_size"] > 0
    w.call("GET /app/devices", "/app/devices")
    status = w.call("GET /app/status", "/app/status")
    if status and not (status["is_connected"] and status["is_logged_in"]):
        w.failures.append(f"GET /app/status: default is not connected and logged in: {status}")
    w.call("GET /app/passkey", "/app/passkey")
    assertion = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"},
    }
    w.call("POST /app/passkey/response", "/app/passkey/response", assertion)
    w.call("POST /app/passkey/confirm", "/app/passkey/confirm")

    w.call("GET /devices", "/devices")
    hook = {"webhook_url": "https://example.com/hook", "webhook_events": "message"}
    added = w.call("POST /devices", "/devices", {"device_id": "fresh", **hook})
    w.call("GET /devices/{device_id}", "/devices/fresh")
    w.call("GET /devices/{device_id}/status", "/devices/fresh/status")
    hook = {"webhook_url": "https://example.com/other", "webhook_events": "message"}
    w.call("PATCH /devices/{device_id}/webhook", "/devices/fresh/webhook", hook)
    got = w.call("GET /devices/{device_id}/webhook", "/devices/fresh/webhook")
    if added is not None and got is not None and got["webhook_url"] != hook["webhook_url"]:
        w.failures.append(f"GET /devices/{{device_id}}/webhook: not what PATCH set: {got}")
    login = w.call("GET /devices/{device_id}/login", "/devices/fresh/login")
    if login is not None and not login.get("qr_link"):
        w.failures.append(f"GET /devices/{{device_id}}/login: no qr_link: {login}")
    w.call("POST /devices/{device_id}/login/code", f"/devices/fresh/login/code?phone={THIRD}")
    w.call("GET /app/login", "/app/login", device="fresh")
    w.call("GET /app/login-with-code", f"/app/login-with-code?phone={THIRD}", device="fresh")


def users(w: Walk) -> None:
    w.call("GET /user/info", f"/user/info?phone={PEER}")
    w.call("GET /user/avatar", f"/user/avatar?phone={PEER}&is_preview=true")
    w.call("POST /user/avatar", "/user/avatar", files={"avatar": ("me.jpg", "image/jpeg", jpeg())})
    w.call("POST /user/pushname", "/user/pushname", {"push_name": "Walker"})
    w.call("GET /user/my/privacy", "/user/my/privacy")
    w.call("GET /user/my/contacts", "/user/my/contacts")
    checked = w.call("GET /user/check", f"/user/check?phone={PEER}")
    if checked is not None and checked != {"is_on_whatsapp": True}:
        w.failures.append(f"GET /user/check: {checked}")
    w.call("GET /user/business-profile", f"/user/business-profile?phone={PEER}")


def sends(w: Walk) -> None:
    sent = w.call("POST /send/message", "/send/message", {"phone": PEER, "message": "walk 1"})
    w.values["text"] = made(sent, "message_id")
    image = w.call(
        "POST /send/image",
        "/send/image",
        form={"phone": PEER, "caption": "a picture", "compress": "false"},
        files={"image": ("a.jpg", "image/jpeg", jpeg())},
    )
    w.values["image"] = made(image, "message_id")
    voice = ffmpeg(
        w.tmp, ".ogg", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "libopus"
    )
    w.call(
        "POST /send/audio",
        "/send/audio",
        form={"phone": PEER, "ptt": "true"},
        files={"audio": ("a.ogg", "audio/ogg", voice)},
    )
    w.call(
        "POST /send/file",
        "/send/file",
        form={"phone": PEER, "caption": "a file"},
        files={"file": ("a.pdf", "application/pdf", b"%PDF-1.4\n" + b"x" * 2000)},
    )
    w.call(
        "POST /send/sticker",
        "/send/sticker",
        form={"phone": PEER},
        files={"sticker": ("a.png", "image/png", png())},
    )
    film = ffmpeg(
        w.tmp,
        ".mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "1"),
        *("-pix_fmt", "yuv420p", "-movflags", "+faststart"),
    )
    w.call(
        "POST /send/video",
        "/send/video",
        form={"phone": PEER, "caption": "a film"},
        files={"video": ("a.mp4", "video/mp4", film)},
    )
    contact = {"phone": PEER, "contact_name": "Third", "contact_phone": THIRD}
    w.call("POST /send/contact", "/send/contact", contact)
    link = {"phone": PEER, "link": "https://example.com/", "caption": "a link"}
    w.call("POST /send/link", "/send/link", link)
    where = {"phone": PEER, "latitude": "-6.2", "longitude": "106.8"}
    w.call("POST /send/location", "/send/location", where)
    poll = {"phone": PEER, "question": "Lunch?", "options": ["yes", "no"], "max_answer": 1}
    w.call("POST /send/poll", "/send/poll", poll)
    w.call("POST /send/presence", "/send/presence", {"type": "available"})
    typing = {"phone": PEER, "action": "start"}
    w.call("POST /send/chat-presence", "/send/chat-presence", typing)
    wait_until(
        lambda: w.values["text"] in stored_ids(w.gw, "peer", ME),
        10,
        interval=0.2,
        what="the walker's first message in the peer's chat store",
    )


def messages(w: Walk) -> None:
    text, image = w.values["text"], w.values["image"]
    incoming = w.peer("POST", "/send/message", {"phone": ME, "message": "to the walker"})
    wait_until(
        lambda: incoming["message_id"] in stored_ids(w.gw, "default", PEER),
        10,
        what="the peer's message stored by the walker",
    )
    on = f"/message/{text}"
    w.call("POST /message/{message_id}/reaction", f"{on}/reaction", {"phone": PEER, "emoji": "👍"})
    w.call("POST /message/{message_id}/update", f"{on}/update", {"phone": PEER, "message": "e"})
    w.call("POST /message/{message_id}/star", f"{on}/star", {"phone": PEER})
    w.call("POST /message/{message_id}/unstar", f"{on}/unstar", {"phone": PEER})
    w.call("POST /message/{message_id}/forward", f"{on}/forward", {"phone": PEER})
    w.call(
        "POST /message/{message_id}/read",
        f"/message/{incoming['message_id']}/read",
        {"phone": PEER},
    )
    w.call("GET /message/{message_id}/download", f"/message/{image}/download?phone={PEER}")
    w.call("POST /message/{message_id}/delete", f"{on}/delete", {"phone": PEER})
    gone = w.call("POST /send/message", "/send/message", {"phone": PEER, "message": "oops"})
    w.call(
        "POST /message/{message_id}/revoke",
        f"/message/{made(gone, 'message_id')}/revoke",
        {"phone": PEER},
    )


def chats(w: Walk) -> None:
    listed = w.call("GET /chats", "/chats?limit=10")
    if listed is not None and PEER_JID not in {c["jid"] for c in listed["data"]}:
        w.failures.append(f"GET /chats: no chat with the peer: {listed}")
    w.call("GET /chat/{chat_jid}/messages", f"/chat/{PEER_JID}/messages?limit=5")
    w.call("POST /chat/{chat_jid}/pin", f"/chat/{PEER_JID}/pin", {"pinned": True})
    w.call("POST /chat/{chat_jid}/archive", f"/chat/{PEER_JID}/archive", {"archived": True})
    w.call(
        "POST /chat/{chat_jid}/disappearing",
        f"/chat/{PEER_JID}/disappearing",
        {"timer_seconds": 86400},
    )


def groups(w: Walk) -> None:
    created = w.call("POST /group", "/group", {"title": "Walkers", "participants": [PEER]})
    group = made(created, "group_id")
    w.call("GET /group/info", f"/group/info?group_id={group}")
    w.call("GET /group/participants", f"/group/participants?group_id={group}")
    csv = w.call("GET /group/participants/export", f"/group/participants/export?group_id={group}")
    if csv is not None and PEER.encode() not in csv:
        w.failures.append(f"GET /group/participants/export: the peer is not listed: {csv!r}")
    members = {"group_id": group, "participants": [THIRD]}
    w.call("POST /group/participants", "/group/participants", members)
    w.call("POST /group/participants/promote", "/group/participants/promote", members)
    w.call("POST /group/participants/demote", "/group/participants/demote", members)
    w.call("POST /group/participants/remove", "/group/participants/remove", members)
    w.call("POST /group/name", "/group/name", {"group_id": group, "name": "Walkers 2"})
    w.call("POST /group/topic", "/group/topic", {"group_id": group, "topic": "walking"})
    w.call("POST /group/locked", "/group/locked", {"group_id": group, "locked": True})
    w.call("POST /group/announce", "/group/announce", {"group_id": group, "announce": True})
    w.call(
        "POST /group/photo",
        "/group/photo",
        form={"group_id": group},
        files={"photo": ("g.jpg", "image/jpeg", jpeg((20, 20, 200), 640))},
    )
    w.call("GET /group/invite-link", f"/group/invite-link?group_id={group}&reset=false")
    w.call("GET /group/participant-requests", f"/group/participant-requests?group_id={group}")
    for action in ("approve", "reject"):
        w.call(
            f"POST /group/participant-requests/{action}",
            f"/group/participant-requests/{action}",
            {"group_id": group, "participants": [THIRD]},
        )
    mine = w.call("GET /user/my/groups", "/user/my/groups")
    if mine is not None and group not in {g["JID"] for g in mine["data"]}:
        w.failures.append(f"GET /user/my/groups: the new group is not listed: {mine}")

    # The peer's group: the walker joins it by link, reads it by link and leaves it.
    theirs = w.peer("POST", "/group", {"title": "Peers", "participants": []})["group_id"]
    link = w.peer("GET", f"/group/invite-link?group_id={theirs}")["invite_link"]
    w.call("GET /group/info-from-link", f"/group/info-from-link?link={quote(link)}")
    w.call("POST /group/join-with-link", "/group/join-with-link", {"link": link})
    w.call("POST /group/leave", "/group/leave", {"group_id": theirs})


def newsletters(w: Walk) -> None:
    status, made = w.sandbox.api(
        "POST", "/sim/newsletters", {"owner": PEER, "name": "Walk news", "description": "d"}
    )
    assert status == 201, made
    channel = made["jid"]
    status, body = w.sandbox.api(
        "POST", f"/sim/newsletters/{channel.split('@')[0]}/followers", {"phone": ME}
    )
    assert status == 200, body
    w.peer("POST", "/send/message", {"phone": channel, "message": "issue 1"})
    listed = wait_until(
        lambda: (found := w.gw.http.get("/user/my/newsletters")[1]["results"]["data"]) and found,
        10,
        what="the followed channel",
    )
    assert listed[0]["id"] == channel
    w.call("GET /user/my/newsletters", "/user/my/newsletters")
    w.call("GET /newsletter/messages", f"/newsletter/messages?newsletter_id={channel}&count=10")
    w.call("POST /newsletter/unfollow", "/newsletter/unfollow", {"newsletter_id": channel})


def calls(w: Walk) -> None:
    status, offered = w.sandbox.api("POST", f"/sim/phones/{THIRD}/call", {"to": ME})
    assert status == 201, offered
    body = {"caller_jid": THIRD_JID, "call_id": offered["call_id"]}
    w.call("POST /call/reject", "/call/reject", body)


def chatwoot(w: Walk) -> None:
    w.call("GET /chatwoot/configs", "/chatwoot/configs")
    config = {"chatwoot_url": "https://chatwoot.example.com", "account_id": 1, "inbox_id": 5}
    on = "/devices/default/chatwoot/config"
    w.call("PUT /devices/{device_id}/chatwoot/config", on, config)
    w.call("GET /devices/{device_id}/chatwoot/config", on)
    w.call("DELETE /devices/{device_id}/chatwoot/config", on)
    w.call("POST /chatwoot/sync", "/chatwoot/sync", {"device_id": "default", "days_limit": 1})
    w.call("GET /chatwoot/sync/status", "/chatwoot/sync/status?device_id=default")
    w.call("POST /chatwoot/webhook", "/chatwoot/webhook", {"event": "message_created"})
    w.call(
        "POST /chatwoot/webhook/{device_id}",
        "/chatwoot/webhook/default",
        {"event": "message_created"},
    )


def endings(w: Walk) -> None:
    """Reconnects, logouts and deletions: last, on sessions nothing else needs."""
    w.call("POST /devices/{device_id}/reconnect", "/devices/spare/reconnect")
    w.gw.wait_status("spare", {"CONNECTED"}, timeout=15)
    w.call("POST /devices/{device_id}/logout", "/devices/spare/logout")
    w.call("DELETE /devices/{device_id}", "/devices/fresh")
    w.call("GET /app/reconnect", "/app/reconnect")
    w.gw.wait_status("default", {"CONNECTED"}, timeout=15)
    w.call("GET /app/logout", "/app/logout")


STAGES: list[Callable[[Walk], None]] = [
    app_and_devices,
    users,
    sends,
    messages,
    chats,
    groups,
    newsletters,
    calls,
    chatwoot,
    endings,
]


@pytest.fixture(scope="module")
def sandbox_gateway(sandbox, tmp_path_factory) -> Iterator[Gateway]:
    """The walk calls as fast as a script does: no per-session rate limit in the way."""
    gateway = Gateway(
        tmp_path_factory.mktemp("walk-gateway") / "data",
        env={**SUBPROCESS_WORKERS, "GOWA_RATE_LIMIT": "0"},
        args=["--sandbox", sandbox.url],
    )
    gateway.start()
    yield gateway
    gateway.cleanup()


@pytest.fixture(scope="module")
def walk(sandbox, sandbox_gateway, tmp_path_factory) -> Walk:
    for phone, name in ((ME, "Walker"), (PEER, "Peer"), (THIRD, "Third"), (SPARE, "Spare")):
        new_phone(sandbox, phone, name)
    pair(sandbox_gateway, sandbox, "default", ME)
    pair(sandbox_gateway, sandbox, "peer", PEER)
    pair(sandbox_gateway, sandbox, "spare", SPARE)
    status, body = sandbox.api(
        "PUT", f"/sim/phones/{PEER}/picture", {"data": base64.b64encode(jpeg()).decode()}
    )
    assert status == 200, body
    return Walk(sandbox_gateway, sandbox, tmp_path_factory.mktemp("walk"))


def test_every_operation_answers_as_the_yaml_says(walk: Walk) -> None:
    for stage in STAGES:
        stage(walk)
    assert not walk.failures, "\n".join(walk.failures)
    assert set(walk.walked) == yaml_operations()
    assert set(UNSUPPORTED) <= yaml_operations()


def test_docs_list_exactly_the_unsupported_operations() -> None:
    """docs/sandbox.md's table: every operation of UNSUPPORTED once, with its error code."""
    docs = (ROOT / "docs" / "sandbox.md").read_text()
    section = docs.split("## GoWA operations the sandbox cannot serve", 1)[1].split("\n## ")[0]
    listed = {}
    for row in re.findall(r"^\| `.*\|$", section, re.MULTILINE):
        code = re.search(r"\(\d{3} `([A-Z_]+)`\) \|$", row)
        assert code, row
        for key in re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`]*)`", row):
            listed[key] = code.group(1)
    assert listed == {key: code for key, (code, _) in UNSUPPORTED.items()}
