"""Media of the messages handlers send and download: size limits, uploads, where files go."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from pathlib import Path
from typing import Any

from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers.operations.context import Context, fail
from workers.operations.messages import media_info

#: Pixels of a picture sent through the API (image, sticker): phone-camera photos pass.
MAX_IMAGE_PIXELS = 50_000_000
#: A file extension taken from the sender's file name or mimetype.
SAFE_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")


def require_ffmpeg(what: str) -> None:
    if shutil.which("ffmpeg") is None:
        raise fail(
            p.ErrorCode.FFMPEG_NOT_AVAILABLE,
            f"{what} needs ffmpeg, which is not installed on this server "
            "(install it, e.g. `apt-get install ffmpeg`)",
        )


def upload_of(op: Any, field: str) -> ops.Upload:
    upload = getattr(op, field)
    if upload is None or not upload.data:
        raise fail(p.ErrorCode.VALIDATION_ERROR, f"{field} or {field}_url is required")
    return upload


#: The longest side of a profile picture or group photo sent to WhatsApp.
PICTURE_SIDE = 640


def check_pixels(data: bytes, what: str) -> None:
    """Refuse a picture whose header promises more than ``MAX_IMAGE_PIXELS``.

    neonize decodes a whole image to draw its thumbnail (a sticker, to convert it), and a
    decoded picture takes 3-4 bytes a pixel whatever its file size: a small PNG of zeros
    can ask for gigabytes. Opening reads only the header, so this costs nothing. What PIL
    cannot identify is left to neonize to refuse.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        width = height = MAX_IMAGE_PIXELS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return
    if width * height > MAX_IMAGE_PIXELS:
        raise fail(
            p.ErrorCode.VALIDATION_ERROR,
            f"{what} of {width}x{height} pixels is over the limit of "
            f"{MAX_IMAGE_PIXELS / 1e6:g} megapixels; scale it down",
        )


def profile_jpeg(data: bytes, what: str) -> bytes:
    """``data`` as WhatsApp takes a profile picture or group photo: a JPEG (WhatsApp
    refuses other formats) of at most ``PICTURE_SIDE`` pixels a side, as GoWA sends it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    check_pixels(data, what)
    try:
        with Image.open(io.BytesIO(data)) as source:
            image = ImageOps.exif_transpose(source).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise fail(p.ErrorCode.VALIDATION_ERROR, f"{what} is not a readable picture") from exc
    image.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def frame_count(data: bytes) -> int:
    """Frames of an (animated) picture; 1 for anything PIL cannot read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 1


def download_to_disk(ctx: Context, chat: str, message_id: str, message: e2e.Message) -> Path:
    info = media_info(message)
    size, limit = info.get("file_length") or 0, ctx.max_download_bytes
    if size > limit:
        raise fail(
            p.ErrorCode.PAYLOAD_TOO_LARGE,
            f"media of {size / 2**20:.1f} MB is over the {limit / 2**20:.0f} MB download limit",
        )
    data = ctx.client.download_any(message)
    path = media_path(ctx.media_dir, info.get("media_type", "file"), chat, message_id, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    ctx.store.set_flag(chat, message_id, "media_path", str(path))
    return path


def media_path(
    media_dir: Path, kind: str, chat: str, message_id: str, info: dict[str, Any]
) -> Path:
    """Where a message's media is saved: nothing the sender chose names a folder.

    The message id and the file name come from the peer (an id ``../../whatsmeow`` once
    overwrote the session's key store), so the name is a hash of chat and id, the
    extension only letters and digits, and the result is checked to stay in ``media_dir``.
    """
    digest = hashlib.sha256(f"{chat}\0{message_id}".encode()).hexdigest()[:32]
    suffix = _extension(info.get("mimetype", ""), info.get("filename", ""))
    path = media_dir / kind / f"{digest}{suffix}"
    if not path.resolve().is_relative_to(media_dir.resolve()):
        raise fail(p.ErrorCode.VALIDATION_ERROR, f"media path {path} is outside {media_dir}")
    return path


def _extension(mimetype: str, filename: str) -> str:
    """``.ext`` from the sender's file name or mimetype, if it is a plain one."""
    import mimetypes

    candidates = [filename.rsplit(".", 1)[1]] if "." in filename else []
    guessed = mimetypes.guess_extension(mimetype.split(";")[0].strip()) or ""
    candidates.append(guessed.lstrip("."))
    for candidate in candidates:
        if SAFE_EXTENSION.fullmatch(candidate):
            return f".{candidate}"
    return ".bin"
