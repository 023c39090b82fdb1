"""Media end to end: two real sessions, the real whatsmeow upload and download against the
sandbox media CDN, the receiving session getting the very bytes that were sent.

One pair of sessions serves every test of the module (pairing is the slow part). Alice
sends; Bob downloads automatically (``auto_download_media``); Alice's own
``/message/{id}/download`` fetches the same file back from the CDN, a second download by
another session. ``*_url`` media come from a local HTTP server the gateway is allowed to
reach (``GOWA_WEBHOOK_ALLOW_NETWORKS``).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    SUBPROCESS_WORKERS,
    EventWatcher,
    is_event,
    new_phone,
    pair,
    session_dir,
)
from tests.procs import Gateway, free_port, wait_until

pytestmark = pytest.mark.integration

ALICE, BOB = "15550000711", "15550000712"
A_JID = f"{ALICE}@s.whatsapp.net"
FILE_LIMIT_MB = 101  # over GoWA's 50 MB default, for the 100 MB document


class Files:
    """A loopback HTTP server for the ``*_url`` variants: path -> (content type, bytes)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, data = files.get(self.path, ("", b""))
                self.send_response(200 if data else 404)
                self.send_header("Content-Type", content_type or "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str, content_type: str, data: bytes) -> str:
        self.files[f"/{name}"] = (content_type, data)
        return f"http://127.0.0.1:{self.server.server_port}/{name}"


@pytest.fixture(scope="module")
def files() -> Iterator[Files]:
    server = Files()
    yield server
    server.server.shutdown()


@pytest.fixture(scope="module")
def gw(sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        **SUBPROCESS_WORKERS,
        "GOWA_MAX_FILE_MB": str(FILE_LIMIT_MB),
        "GOWA_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    gateway = Gateway(
        tmp_path_factory.mktemp("media-gateway") / "data",
        env=env,
        args=["--sandbox", sandbox.url],
    )
    gateway.start()
    try:
        new_phone(sandbox, ALICE, "Alice")
        new_phone(sandbox, BOB, "Bob")
        pair(gateway, sandbox, "alice", ALICE)
        pair(gateway, sandbox, "bob", BOB)
        status, body = gateway.http.call(
            "PATCH", "/api/sessions/bob", {"config": {"auto_download_media": True}}
        )
        assert status == 200, body
        yield gateway
    finally:
        gateway.cleanup()


@pytest.fixture(scope="module")
def events(gw: Gateway) -> Iterator[EventWatcher]:
    watcher = EventWatcher(gw.http.base.replace("http", "ws") + "/api/dashboard/events")
    yield watcher
    watcher.close()


# -- media of every kind, made here: random content, real containers where ffmpeg reads them


def picture(fmt: str = "PNG", frames: int = 1) -> bytes:
    from PIL import Image

    images = [Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)) for _ in range(frames)]
    out = io.BytesIO()
    images[0].save(out, format=fmt, save_all=frames > 1, append_images=images[1:], duration=100)
    return out.getvalue()


def ffmpeg(tmp: Path, name: str, *args: str) -> bytes:
    out = tmp / name
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args, str(out)], check=True, capture_output=True
    )
    return out.read_bytes()


def video(tmp: Path, size: int = 0) -> bytes:
    """A one-second MP4, padded to ``size`` bytes with a ``free`` box of random bytes (a
    valid MP4 of any size without encoding megabytes of video)."""
    data = ffmpeg(
        tmp,
        f"{uuid.uuid4().hex}.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=64x64:rate=10", "-t", "1"),
        *("-pix_fmt", "yuv420p", "-movflags", "+faststart"),
    )
    pad = size - len(data)
    if pad >= 8:
        data += struct.pack(">I4s", pad, b"free") + os.urandom(pad - 8)
    return data


def voice(tmp: Path) -> bytes:
    return ffmpeg(
        tmp,
        f"{uuid.uuid4().hex}.ogg",
        *("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "libopus"),
    )


# -- sending, receiving, downloading


def multipart(fields: dict[str, str], name: str, filename: str, ctype: str, data: bytes):
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for key, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode())
        out.write(f"{value}\r\n".encode())
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
    )
    out.write(data)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def send(
    gw: Gateway, route: str, field: str, data: bytes, ctype: str, to: str = BOB, **fields: str
) -> str:
    body, headers = multipart(
        {"phone": to, **fields}, field, f"upload.{ctype.split('/')[1]}", ctype, data
    )
    status, answer = gw.http.post(
        f"/api/alice/send/{route}", raw=body, headers=headers, timeout=150
    )
    assert status == 200, answer
    return answer["results"]["message_id"]


def bob_files(gw: Gateway) -> set[Path]:
    return {p for p in (session_dir(gw, "bob") / "media").rglob("*") if p.is_file()}


def received(
    gw: Gateway, before: set[Path], message_id: str, size: int, timeout: float = 30, chat=ALICE
):
    """Bob's automatic download of the message (a file new since ``before``), which his
    download route then names."""
    path = wait_until(
        lambda: next((p for p in bob_files(gw) - before if p.stat().st_size == size), None),
        timeout,
        interval=0.1,
        what=f"Bob's automatic download of {message_id}",
    )
    assert download(gw, "bob", chat, message_id) == path
    return path.read_bytes()


def download(gw: Gateway, session: str, peer: str, message_id: str) -> Path:
    status, answer = gw.http.get(
        f"/api/{session}/message/{message_id}/download?phone={peer}", timeout=150
    )
    assert status == 200, answer
    results = answer["results"]
    path = Path(results["file_path"])
    assert results["file_size"] == path.stat().st_size
    return path


def alice_copy(gw: Gateway, message_id: str) -> bytes:
    """The sender downloads her own sent message from the CDN."""
    return download(gw, "alice", BOB, message_id).read_bytes()


KINDS = ["image", "video", "voice", "document", "sticker", "animated-sticker"]
#: The key of each kind in GoWA's ``message`` event.
EVENT_KEYS = {"voice": "audio", "animated-sticker": "sticker"}


def make(kind: str, tmp: Path) -> tuple[str, str, bytes, str, dict[str, str]]:
    """(route, field, data, content type, extra form fields) of one kind of media."""
    if kind == "image":
        return "image", "image", picture(), "image/png", {"caption": "a picture"}
    if kind == "video":
        return "video", "video", video(tmp), "video/mp4", {"caption": "a film"}
    if kind == "voice":
        return "audio", "audio", voice(tmp), "audio/ogg", {"ptt": "true"}
    if kind == "document":
        return "file", "file", os.urandom(300_000), "application/pdf", {"caption": "a file"}
    if kind == "sticker":
        return "sticker", "sticker", picture(), "image/png", {}
    return "sticker", "sticker", picture("GIF", frames=3), "image/gif", {}


# An animated sticker costs ffmpeg ~5 s a conversion: once is enough (the static sticker
# proves sticker_url).
CASES = [(kind, by_url) for kind in KINDS for by_url in (False, True)]
CASES.remove(("animated-sticker", True))


@pytest.mark.parametrize(
    ("kind", "by_url"), CASES, ids=[f"{k}-{'url' if u else 'upload'}" for k, u in CASES]
)
def test_every_kind_round_trips_byte_identical(gw, files, events, tmp_path, kind, by_url):
    route, field, data, ctype, extra = make(kind, tmp_path)
    before, url = bob_files(gw), ""
    if by_url:
        url = files.url(f"{uuid.uuid4().hex}.{ctype.split('/')[1]}", ctype, data)
        status, answer = gw.http.post(
            f"/api/alice/send/{route}",
            raw=urlencoded({"phone": BOB, f"{field}_url": url, **extra}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, answer
        message_id = answer["results"]["message_id"]
    else:
        message_id = send(gw, route, field, data, ctype, **extra)
    mine = alice_copy(gw, message_id)
    if kind.endswith("sticker"):
        # A sticker is converted to WebP before it is sent: both sides hold that file.
        assert mine[:4] == b"RIFF" and mine[8:12] == b"WEBP"
        assert frames(mine) == (3 if kind == "animated-sticker" else 1)
    else:
        assert mine == data
    assert received(gw, before, message_id, len(mine)) == mine
    event = events.wait(is_event("message", "bob", id=message_id), 10, "Bob's message event")
    media = event["payload"][EVENT_KEYS.get(kind, kind)]
    assert media["url"].startswith("https://mmg.whatsapp.net/v/t62."), event
    if kind == "document":  # the form's file name, or the URL's last segment
        assert media["filename"] == (url.rsplit("/", 1)[1] if by_url else "upload.pdf"), event


def frames(data: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return getattr(image, "n_frames", 1)


def urlencoded(fields: dict[str, str]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def test_a_picture_sent_to_a_group(gw):
    """Group media: the same upload, the key in a sender-key encrypted message."""
    status, answer = gw.http.post(
        "/api/alice/group", {"title": "Photos", "participants": [BOB]}, timeout=30
    )
    assert status == 200, answer
    group_id = answer["results"]["group_id"]
    data, before = picture(), bob_files(gw)
    message_id = send(gw, "image", "image", data, "image/png", to=group_id)
    assert received(gw, before, message_id, len(data), chat=group_id) == data


def test_a_16_mb_video_and_a_100_mb_document(gw, tmp_path):
    big_video = video(tmp_path, 16 << 20)
    before, started = bob_files(gw), time.monotonic()
    message_id = send(gw, "video", "video", big_video, "video/mp4")
    assert received(gw, before, message_id, len(big_video), timeout=60) == big_video
    video_seconds = time.monotonic() - started

    document = os.urandom(100 << 20)
    before, started = bob_files(gw), time.monotonic()
    message_id = send(gw, "file", "file", document, "application/octet-stream")
    assert received(gw, before, message_id, len(document), timeout=120) == document
    print(f"16 MB video {video_seconds:.1f} s, 100 MB document {time.monotonic() - started:.1f} s")


def sent_count(gw: Gateway) -> int:
    status, answer = gw.http.get(f"/api/alice/chat/{BOB}@s.whatsapp.net/messages?limit=1000")
    assert status == 200, answer
    return len(answer["results"]["data"])


def test_oversize_upload_is_413_and_nothing_is_stored(gw, sandbox):
    cdn = sandbox.data_dir / "media"
    before, sent_before, bob_before = sorted(cdn.iterdir()), sent_count(gw), bob_files(gw)
    too_big = os.urandom((FILE_LIMIT_MB << 20) + 1)
    body, headers = multipart({"phone": BOB}, "file", "big.bin", "application/pdf", too_big)
    status, answer = gw.http.post("/api/alice/send/file", raw=body, headers=headers, timeout=60)
    assert (status, answer["code"]) == (413, "PAYLOAD_TOO_LARGE"), answer
    assert f"file is larger than the {FILE_LIMIT_MB} MB limit" in answer["message"]
    assert sorted(cdn.iterdir()) == before
    assert sent_count(gw) == sent_before
    assert bob_files(gw) == bob_before


def test_media_the_cdn_no_longer_has_is_a_clean_error(gw, sandbox):
    """Media WhatsApp has dropped (expired, here deleted): the download answers with
    whatsmeow's 404, never a 500, and the message stays."""
    before = bob_files(gw)
    data = os.urandom(5000)
    message_id = send(gw, "file", "file", data, "application/pdf")
    assert received(gw, before, message_id, len(data)) == data
    for blob in (sandbox.data_dir / "media").glob("*.enc"):
        blob.unlink()
    status, answer = gw.http.get(f"/api/alice/message/{message_id}/download?phone={BOB}")
    assert status == 502 and answer["code"] == "WHATSAPP_ERROR", answer
    assert "404" in answer["message"], answer
    assert download(gw, "bob", ALICE, message_id).read_bytes() == data  # his copy is kept
