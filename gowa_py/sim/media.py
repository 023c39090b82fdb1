"""The media CDN's storage: the encrypted files clients upload, kept on disk as given.

WhatsApp media never travels in the message: the sender encrypts the file with a fresh
media key (AES-CBC plus a truncated HMAC), uploads the result to a CDN host it got from
``<media_conn/>`` (answered by :meth:`MediaStore.handle_media_conn` with the host and an
upload ``auth`` token) and sends the URL, the key and both hashes in the end-to-end
encrypted message. The sandbox cannot decrypt what it stores, as WhatsApp's CDN cannot;
:mod:`.cdn` is its HTTP side. Simulated contacts upload through their own whatsmeow too.

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
import re
import secrets
import time
from pathlib import Path

from .binary import Node
from .certs import write_private
from .connection import Connection
from .jid import JID
from .network import Network, iq_result

MEDIA_HOST = "mmg.whatsapp.net"
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
        name = f"{match[1]}.enc" if match else ""
        if name not in self._sizes:
            return None
        if not (self.folder / name).is_file():  # deleted behind the store's back
            del self._sizes[name]
            return None
        return self.folder / name

    def _evict(self) -> None:
        while sum(self._sizes.values()) > self.max_total and len(self._sizes) > 1:
            oldest = next(iter(self._sizes))
            del self._sizes[oldest]
            (self.folder / oldest).unlink(missing_ok=True)
