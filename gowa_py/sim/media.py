"""The media CDN's storage: the encrypted files clients upload, kept on disk as given.

WhatsApp media never travels in the message: the sender encrypts the file with a fresh
media key (AES-CBC plus a truncated HMAC, keys from HKDF over the key and the media
type), uploads the result to a CDN host it got from ``<media_conn/>`` (answered by
:meth:`MediaStore.handle_media_conn` with the host and an upload ``auth`` token) and
sends the URL, the key and both hashes in the end-to-end encrypted message. The sandbox
cannot decrypt what it stores, as WhatsApp's CDN cannot; :mod:`.cdn` is its HTTP side.

Files live in ``<data-dir>/media`` as ``<32 hex>.enc``. An upload is written to a
``.part`` file and renamed only once it is complete and matches its hash, so an upload
refused or cut short leaves nothing behind (``.part`` files a crash left are removed at
start). Past ``max_total`` bytes the oldest files go first: a sandbox serves tests, not
archives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .binary import Node
from .certs import write_private
from .connection import Connection
from .jid import JID
from .network import Network, iq_result

MEDIA_HOST = "mmg.whatsapp.net"
#: HKDF info per media type (whatsmeow's ``MediaType`` values).
KEY_INFO = {
    "image": b"WhatsApp Image Keys",
    "video": b"WhatsApp Video Keys",
    "audio": b"WhatsApp Audio Keys",
    "document": b"WhatsApp Document Keys",
}
#: The folder of a direct path per upload type, as WhatsApp's CDN names them.
PATH_FOLDERS = {
    "image": "t62.7118-24",
    "video": "t62.7161-24",
    "audio": "t62.7114-24",
    "ptt": "t62.7117-24",
    "document": "t62.7119-24",
}
OTHER_FOLDER = "t62.7120-24"
BLOB_PATH = re.compile(r"/v/t62\.\d{4,5}-24/([0-9a-f]{32})\.enc")
DEFAULT_MAX_UPLOAD = 128 << 20
DEFAULT_MAX_TOTAL = 1 << 30
#: Seconds whatsmeow keeps the ``media_conn`` answer, and the ``auth`` token's lifetime.
CONN_TTL = 300
AUTH_TTL = 21600
_AUTH_MAC = 16


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


def hash_token(digest: bytes) -> str:
    """A SHA-256 as whatsmeow writes it in upload paths and ``hash=`` (URL-safe, padded)."""
    return base64.urlsafe_b64encode(digest).decode()


class MediaStore:
    """Encrypted files by CDN path, in one folder, with a per-upload and a total limit."""

    def __init__(
        self,
        folder: Path,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        max_total: int = DEFAULT_MAX_TOTAL,
    ) -> None:
        if not 0 < max_upload <= max_total:
            raise ValueError("the upload limit must be positive and at most the total limit")
        self.folder = folder
        self.max_upload = max_upload
        self.max_total = max_total
        folder.mkdir(parents=True, exist_ok=True)
        for part in folder.glob("*.part"):
            part.unlink()
        key_path = folder / "auth.key"
        if not key_path.exists():
            write_private(key_path, secrets.token_bytes(32))
        self._auth_key = key_path.read_bytes()
        blobs = sorted(folder.glob("*.enc"), key=lambda p: p.stat().st_mtime)
        self._sizes = {p.name: p.stat().st_size for p in blobs}

    # -- upload tokens: stateless, so they survive a sandbox restart as whatsmeow's cache does

    def issue_auth(self) -> str:
        expiry = (int(time.time()) + AUTH_TTL).to_bytes(8, "big")
        mac = hmac.new(self._auth_key, expiry, hashlib.sha256).digest()[:_AUTH_MAC]
        return base64.urlsafe_b64encode(expiry + mac).decode()

    def auth_valid(self, token: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
        except (binascii.Error, ValueError):
            return False
        expiry, mac = raw[:8], raw[8:]
        expected = hmac.new(self._auth_key, expiry, hashlib.sha256).digest()[:_AUTH_MAC]
        return hmac.compare_digest(mac, expected) and int.from_bytes(expiry, "big") > time.time()

    def handle_media_conn(self, _net: Network, conn: Connection, iq: Node) -> None:
        """``<iq xmlns="w:m" type="set"><media_conn/>``: the CDN host and an upload token."""
        attrs: dict[str, str | JID] = {
            "auth": self.issue_auth(),
            "ttl": str(CONN_TTL),
            "auth_ttl": str(AUTH_TTL),
            "max_buckets": "12",
        }
        hosts = [Node("host", {"hostname": MEDIA_HOST})]
        conn.send(iq_result(iq, [Node("media_conn", attrs, hosts)]))

    # -- blobs

    def new_part(self) -> Path:
        """A fresh file for an upload in progress; :meth:`commit` it or unlink it."""
        return self.folder / f"{secrets.token_hex(16)}.part"

    def commit(self, part: Path, kind: str) -> tuple[str, str]:
        """Publish a complete upload; its ``(url, direct_path)``."""
        blob = part.with_suffix(".enc")
        part.rename(blob)
        self._sizes[blob.name] = blob.stat().st_size
        self._evict()
        # whatsmeow appends "&hash=...": a direct path always carries a query already.
        direct_path = f"/v/{PATH_FOLDERS.get(kind, OTHER_FOLDER)}/{blob.name}?ccb=11-4"
        return f"https://{MEDIA_HOST}{direct_path}&mms3=true", direct_path

    def blob(self, path: str) -> Path | None:
        """The stored file a CDN path (query excluded) names, if there is one."""
        match = BLOB_PATH.fullmatch(path)
        if match is None or f"{match[1]}.enc" not in self._sizes:
            return None
        return self.folder / f"{match[1]}.enc"

    def _evict(self) -> None:
        while sum(self._sizes.values()) > self.max_total and len(self._sizes) > 1:
            oldest = next(iter(self._sizes))
            del self._sizes[oldest]
            (self.folder / oldest).unlink(missing_ok=True)

    def upload(self, data: bytes, kind: str) -> Upload:
        """Encrypt and store ``data`` as a sender would (the simulated contacts' media)."""
        media_key = os.urandom(32)
        blob = encrypt(data, kind, media_key)
        part = self.new_part()
        part.write_bytes(blob)
        url, direct_path = self.commit(part, kind)
        return Upload(
            url=url,
            direct_path=direct_path,
            media_key=media_key,
            file_sha256=hashlib.sha256(data).digest(),
            file_enc_sha256=hashlib.sha256(blob).digest(),
            file_length=len(data),
        )
