"""What a session archive says about itself (``manifest.json``) and how it can be refused.

The manifest is the archive's first member, so a reader knows the format version, the
schema versions and every file's checksum before it writes a byte of the rest.
"""

from __future__ import annotations

import msgspec

from gowa_py.errors import GowaError
from gowa_py.models import SessionConfig
from gowa_py.protocol import ErrorCode, Me

FORMAT = "gowa-session-archive"
#: Raised when a reader of the previous version could not read an archive correctly.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Where a session's files are inside the archive.
PREFIX = "session/"


class ArchiveInvalid(GowaError):
    """Not a session archive, or a damaged, truncated or unsafe one."""

    code = ErrorCode.ARCHIVE_INVALID


class ArchiveTooNew(GowaError):
    """Written by a newer release (a format or schema version this one does not know)."""

    code = ErrorCode.ARCHIVE_TOO_NEW


class DeviceLive(GowaError):
    """The archived device may still be connected somewhere else."""

    code = ErrorCode.DEVICE_LIVE


class FileEntry(msgspec.Struct, frozen=True):
    sha256: str
    size: int


class ArchivedSession(msgspec.Struct, frozen=True):
    """The session's registry row, as the importing gateway needs it."""

    created_at: float
    config: SessionConfig
    me: Me | None = None
    #: The source gateway's cursor in the session's event log: events after it were not
    #: yet applied there and are delivered by the importing gateway.
    event_epoch: str | None = None
    last_event_seq: int = 0


class Manifest(msgspec.Struct, frozen=True):
    format: str
    format_version: int
    session_id: str
    device_jid: str | None
    created_at: str
    gowa_py_version: str
    #: ``chats.db``: its ``user_version``; ``whatsmeow.db``: whatsmeow's schema version.
    schemas: dict[str, int | None]
    #: True when the source session was left running (``--keep-running``): importing it
    #: would run the device twice.
    source_live: bool
    session: ArchivedSession
    files: dict[str, FileEntry]


class Header(msgspec.Struct):
    """The two fields every gowa-py archive or backup manifest starts with, read first so
    that a file of another kind or of a newer format is refused with a plain reason."""

    format: str
    format_version: int


def too_new(kind: str, version: int, newest: int, verb: str) -> ArchiveTooNew:
    """The refusal of a ``kind`` (archive, backup) of a format newer than ``newest``, the
    one this release reads; ``verb`` is what the user would do with it (import, restore)."""
    return ArchiveTooNew(
        f"{kind} format {version} is newer than this release reads "
        f"({newest}); {verb} it with that release or a newer one"
    )


def decode(raw: bytes) -> Manifest:
    """The manifest, refused when it is not ours or is of a newer format."""
    try:
        header = msgspec.json.decode(raw, type=Header)
    except msgspec.DecodeError as exc:
        raise ArchiveInvalid(f"not a session archive: {MANIFEST} is unreadable ({exc})") from exc
    if header.format != FORMAT:
        raise ArchiveInvalid(f"not a session archive: format {header.format!r}")
    if header.format_version > FORMAT_VERSION:
        raise too_new("archive", header.format_version, FORMAT_VERSION, "import")
    try:
        return msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise ArchiveInvalid(f"the archive's {MANIFEST} is invalid: {exc}") from exc


def encode(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2)
