"""A small file that decodes to a huge picture (an image bomb) must not reach the decoder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tests.e2e.conftest import SUBPROCESS_WORKERS, new_phone, pair
from tests.e2e.test_gowa_api import multipart

pytestmark = pytest.mark.integration


def _zero_png(width: int, height: int) -> bytes:
    """An RGB PNG of black pixels: a few hundred KB for 12000x12000 (432 MB decoded)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)  # filter byte, then the row's pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def test_image_bomb_is_refused_before_decoding(gateway_factory, sandbox):
    """Injected: a 12000x12000 PNG of ~410 KB sent as an image (neonize decodes it whole
    for the thumbnail). The API answers 400 naming the size, and the worker's peak memory
    does not move; a sticker is checked the same way."""
    gateway = gateway_factory(env=SUBPROCESS_WORKERS, args=["--sandbox", sandbox.url])
    phone = "15550000901"
    new_phone(sandbox, phone, "Painter")
    pair(gateway, sandbox, "painter", phone)
    pid = gateway.session("painter")["worker"]["pid"]
    bomb = _zero_png(12000, 12000)
    assert len(bomb) < 512 * 1024
    before = _peak_rss_kb(pid)
    for route, field in (("image", "image"), ("sticker", "sticker")):
        body, headers = multipart({"phone": phone}, {field: ("bomb.png", "image/png", bomb)})
        status, answer = gateway.http.post(f"/api/painter/send/{route}", raw=body, headers=headers)
        assert status == 400, answer
        assert answer["code"] == "VALIDATION_ERROR" and "12000x12000" in answer["message"]
    assert gateway.session("painter")["worker"]["pid"] == pid
    assert _peak_rss_kb(pid) - before < 32 * 1024
