"""Media the simulated contacts send: encrypted like WhatsApp's, served as its CDN.

WhatsApp media never travels in the message: the sender encrypts the file with a fresh
media key (AES-CBC plus a truncated HMAC, keys from HKDF over the key and the media
type), uploads the result to the CDN and sends the URL, the key and both hashes in the
end-to-end encrypted message. The receiver's whatsmeow asks for the CDN's hosts
(``<media_conn/>``, answered by :func:`handle_media_conn`) and downloads the file through
its proxy, which is this sandbox: ``CONNECT mmg.whatsapp.net:443`` is answered here, the
TLS terminated with the sandbox CA, and the ``GET`` served from :class:`MediaStore`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import ssl
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .binary import Node
from .connection import Connection
from .network import Network, iq_result

log = logging.getLogger(__name__)

MEDIA_HOST = "mmg.whatsapp.net"
#: HKDF info per media type (whatsmeow's ``MediaType`` values).
KEY_INFO = {
    "image": b"WhatsApp Image Keys",
    "video": b"WhatsApp Video Keys",
    "audio": b"WhatsApp Audio Keys",
    "document": b"WhatsApp Document Keys",
}
#: Files kept for download; the oldest go first (a sandbox serves tests, not archives).
MAX_FILES = 256
MAX_REQUEST_BYTES = 16384


@dataclass(frozen=True)
class Upload:
    """What a sender puts in the media message for one uploaded file."""

    url: str
    direct_path: str
    media_key: bytes
    file_sha256: bytes
    file_enc_sha256: bytes
    file_length: int


def encrypt(data: bytes, kind: str, media_key: bytes) -> bytes:
    """The CDN blob of ``data``: ciphertext then the first 10 bytes of its HMAC."""
    expanded = HKDF(hashes.SHA256(), 112, salt=None, info=KEY_INFO[kind]).derive(media_key)
    iv, cipher_key, mac_key = expanded[:16], expanded[16:48], expanded[48:80]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cipher_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return ciphertext + hmac.new(mac_key, iv + ciphertext, hashlib.sha256).digest()[:10]


class MediaStore:
    """Encrypted files by CDN path, and the HTTP server side of the CDN tunnel."""

    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}

    def upload(self, data: bytes, kind: str) -> Upload:
        media_key = os.urandom(32)
        blob = encrypt(data, kind, media_key)
        path = f"/v/t62.7119-24/{secrets.token_hex(16)}.enc"
        self._files[path] = blob
        # whatsmeow appends "&hash=...": a direct path always carries a query already.
        direct_path = f"{path}?ccb=11-4"
        while len(self._files) > MAX_FILES:
            del self._files[next(iter(self._files))]
        return Upload(
            url=f"https://{MEDIA_HOST}{direct_path}",
            direct_path=direct_path,
            media_key=media_key,
            file_sha256=hashlib.sha256(data).digest(),
            file_enc_sha256=hashlib.sha256(blob).digest(),
            file_length=len(data),
        )

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer ``GET <path>`` requests on one (TLS-terminated) connection."""
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if len(request) > MAX_REQUEST_BYTES:
                    break
                method, _, rest = request.decode("latin-1").partition(" ")
                path = rest.split(" ", 1)[0].split("?", 1)[0]
                blob = self._files.get(path) if method == "GET" else None
                if blob is None:
                    log.info("media: no %s %s", method, path)
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                        + f"Content-Length: {len(blob)}\r\n\r\n".encode()
                        + blob
                    )
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ssl.SSLError,
        ):
            pass
        finally:
            writer.close()


def handle_media_conn(_net: Network, conn: Connection, iq: Node) -> None:
    """``<iq xmlns="w:m" type="set"><media_conn/>``: the CDN hosts and an upload token."""
    hosts = [Node("host", {"hostname": MEDIA_HOST})]
    attrs = {"auth": secrets.token_urlsafe(24), "ttl": "300", "auth_ttl": "21600"}
    conn.send(iq_result(iq, [Node("media_conn", {**attrs, "max_buckets": "12"}, hosts)]))
