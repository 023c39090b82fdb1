"""The media CDN's HTTP side: ``https://mmg.whatsapp.net`` as whatsmeow uses it.

The proxy in :mod:`.transport` answers ``CONNECT mmg.whatsapp.net:443``, terminates the
TLS with the sandbox CA and hands the connection to this aiohttp application:

* ``POST /mms/<type>/<token>?auth=<auth>&token=<token>`` (``/newsletter/...`` alike):
  an upload. ``auth`` comes from ``<media_conn/>``, ``token`` is the base64url SHA-256
  of the body (the encrypted file); the answer is ``{"url", "direct_path", "object_id"}``.
  Over the store's size limit: ``413``, read no further and keep nothing.
* ``GET <direct_path>`` (whatsmeow adds ``&hash=...&mms-type=...``): the file as
  stored, ``404`` for a path that names none.

Errors are ``{"code", "message"}`` like the sandbox API; whatsmeow only reads the status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets

from aiohttp import web

from .api import errors_middleware
from .errors import SimError
from .media import MediaStore, hash_token

log = logging.getLogger(__name__)

STORE_KEY: web.AppKey[MediaStore] = web.AppKey("media_store")
CHUNK = 1 << 16


def _expected_hash(token: str) -> bytes:
    try:
        digest = base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise SimError("INVALID_TOKEN", "the upload token is not a base64url SHA-256")
    return digest


def _too_large(store: MediaStore) -> web.Response:
    response = web.json_response(
        {
            "code": "PAYLOAD_TOO_LARGE",
            "message": f"uploads are limited to {store.max_upload} bytes",
        },
        status=413,
    )
    # The rest of the body is not read: the connection cannot carry another request.
    response.force_close()
    return response


async def upload(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    if not store.auth_valid(request.query.get("auth", "")):
        raise SimError("UNAUTHORIZED", "missing or expired media_conn auth", 401)
    token = request.match_info["token"]
    if request.query.get("token") != token:
        raise SimError("INVALID_TOKEN", "the token query parameter must repeat the path's")
    expected = _expected_hash(token)
    if (request.content_length or 0) > store.max_upload:
        return _too_large(store)
    part, digest, size = store.new_part(), hashlib.sha256(), 0
    try:
        with part.open("wb") as out:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > store.max_upload:
                    return _too_large(store)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise SimError("EMPTY_UPLOAD", "the upload has no body")
        if digest.digest() != expected:
            raise SimError(
                "HASH_MISMATCH",
                f"the body hashes to {hash_token(digest.digest())}, the token says {token}",
            )
        url, direct_path = store.commit(part, request.match_info["type"])
    finally:
        part.unlink(missing_ok=True)
    log.info("media: stored %d bytes at %s", size, direct_path)
    return web.json_response(
        {"url": url, "direct_path": direct_path, "object_id": str(secrets.randbits(53))}
    )


async def download(request: web.Request) -> web.StreamResponse:
    blob = request.app[STORE_KEY].blob(request.path)
    if blob is None:
        log.info("media: no file at %s", request.path)
        raise SimError("MEDIA_NOT_FOUND", f"no media at {request.path}", 404)
    return web.FileResponse(blob, headers={"Content-Type": "application/octet-stream"})


def build_cdn(store: MediaStore) -> web.Application:
    app = web.Application(middlewares=[errors_middleware])
    app[STORE_KEY] = store
    app.router.add_post(r"/{prefix:mms|newsletter}/{type}/{token}", upload)
    app.router.add_get("/{path:.*}", download)
    return app
