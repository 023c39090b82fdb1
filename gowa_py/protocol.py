"""Every message that travels between the gateway and a worker, as msgspec structs.

This module is the single source of truth for the wire format: the gateway and the
workers import the same structs, and :func:`encode` / :func:`decode_*` are the only
(de)serialisers. Commands and results are tagged unions, so a new command is one new
struct plus one new union member.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from gowa_py.operations import ApplySettings, OperationInput

# ---------------------------------------------------------------------------
# Session model (README.md, "Session states")


class SessionState(enum.StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    SCAN_QR_CODE = "SCAN_QR_CODE"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    LOGGED_OUT = "LOGGED_OUT"
    FAILED = "FAILED"


class Me(msgspec.Struct, frozen=True):
    """The WhatsApp account a session is logged in as."""

    jid: str
    push_name: str = ""
    lid: str | None = None


# ---------------------------------------------------------------------------
# Worker start-up configuration (passed in the GOWA_WORKER_CONFIG environment variable)


class SandboxConfig(msgspec.Struct, frozen=True):
    """How a worker reaches the sandbox network instead of WhatsApp (docs/sandbox.md)."""

    proxy: str
    ca_file: str
    root_key: str  # 64 hex characters


class RunAs(msgspec.Struct, frozen=True):
    """The identity a worker switches to when the gateway runs as root: the session's
    own uid and gid, and the workers' group that may reach the gateway's sockets."""

    uid: int
    gid: int
    groups: list[int]


class WorkerConfig(msgspec.Struct, frozen=True):
    session_id: str
    session_dir: str
    command_endpoint: str
    event_endpoint: str
    parent_pid: int
    proxy: str | None = None
    sandbox: SandboxConfig | None = None
    log_level: str = "INFO"
    connect_backoff_cap_s: float = 60.0
    qr_limit: int = 6
    silence_timeout_s: float = 180.0
    max_download_bytes: int = 100 * 1024 * 1024
    event_retention: int = 10_000
    run_as: RunAs | None = None
    #: The gateway's CURVE public key (Z85), the only server the worker's sockets trust.
    server_key: str = ""
    log_max_bytes: int = 5 * 1024 * 1024
    #: The worker's ceiling on private writable memory (RLIMIT_DATA); 0 = none.
    memory_limit_bytes: int = 0
    # Per-session behaviour from SessionConfig; later changes arrive as ApplySettings.
    settings: ApplySettings = msgspec.field(default_factory=ApplySettings)


#: Names the descriptor a worker reads its :class:`WorkerKeys` from (a pipe the gateway
#: filled and closed); only the number travels in the environment, never the key.
KEYS_FD_ENV = "GOWA_WORKER_KEYS_FD"


class WorkerKeys(msgspec.Struct, frozen=True):
    """One worker process's credentials on the gateway's sockets (``gowa_py.ipc``).

    Minted by the gateway for each spawn and handed over through a pipe, never through
    the environment or the config; the gateway keeps only the public half.
    """

    secret_key: bytes  # CURVE secret key, Z85 (40 bytes)
    routing_id: bytes  # the worker's ROUTER identity: random, so no other worker can squat it


# ---------------------------------------------------------------------------
# Commands (gateway -> worker)


class Ping(msgspec.Struct, tag="ping", frozen=True):
    pass


class GetStatus(msgspec.Struct, tag="status", frozen=True):
    pass


class GetQR(msgspec.Struct, tag="qr", frozen=True):
    pass


class PairPhone(msgspec.Struct, tag="pair_phone", frozen=True):
    phone: str


class Logout(msgspec.Struct, tag="logout", frozen=True):
    pass


class Reconnect(msgspec.Struct, tag="reconnect", frozen=True):
    pass


class SendText(msgspec.Struct, tag="send_text", frozen=True):
    to: str
    text: str
    reply_message_id: str | None = None
    is_forwarded: bool = False


class MarkRead(msgspec.Struct, tag="mark_read", frozen=True):
    """Send read receipts for messages of one chat (``sender`` matters in groups)."""

    message_ids: list[str]
    chat: str
    sender: str | None = None


class ReplayEvents(msgspec.Struct, tag="replay", frozen=True):
    """Ask for durable events after ``after_seq`` (the gateway catching up after downtime)."""

    after_seq: int
    limit: int = 1000


class Shutdown(msgspec.Struct, tag="shutdown", frozen=True):
    pass


class Operation(msgspec.Struct, tag="operation", frozen=True):
    """One GoWA operation (``gowa_py.operations``), validated by the gateway."""

    input: OperationInput


Command = (
    Ping
    | GetStatus
    | GetQR
    | PairPhone
    | Logout
    | Reconnect
    | SendText
    | MarkRead
    | ReplayEvents
    | Shutdown
    | Operation
)


class Request(msgspec.Struct, tag="request", frozen=True):
    id: str
    deadline: float  # unix time after which the gateway no longer waits for the reply
    command: Command


# ---------------------------------------------------------------------------
# Results (worker -> gateway)


class Pong(msgspec.Struct, tag="pong", frozen=True):
    pid: int
    uptime_s: float


class Status(msgspec.Struct, tag="status", frozen=True):
    state: SessionState
    since: float
    me: Me | None = None
    qr: str | None = None
    qr_expires_at: float | None = None
    error: str | None = None
    last_activity: float | None = None


class QRCode(msgspec.Struct, tag="qr", frozen=True):
    code: str | None
    expires_at: float | None = None


class PairCode(msgspec.Struct, tag="pair_code", frozen=True):
    code: str


class Sent(msgspec.Struct, tag="sent", frozen=True):
    message_id: str
    timestamp: float


class Done(msgspec.Struct, tag="done", frozen=True):
    pass


class OperationResult(msgspec.Struct, tag="operation_result", frozen=True):
    """GoWA's ``results`` and ``message`` for an operation, or a file to send back."""

    results: Any = None
    message: str = "Success"
    content: bytes | None = None
    content_type: str | None = None
    filename: str | None = None


class Event(msgspec.Struct, frozen=True):
    """One event in GoWA's webhook vocabulary plus ``session.status``/``session.qr``/``log``.

    ``seq`` is the row id in the worker's durable event log (0 for ephemeral events such
    as logs); ``id`` stays the same when an event is replayed, so receivers can de-dupe.
    """

    id: str
    session_id: str
    name: str
    timestamp: float
    payload: dict[str, Any]
    seq: int = 0
    #: The identity of the log ``seq`` counts in (``EventLogIdentity.epoch``); "" when
    #: ``seq`` is 0.
    epoch: str = ""


class Events(msgspec.Struct, tag="events", frozen=True):
    events: list[Event]


Result = Pong | Status | QRCode | PairCode | Sent | Done | Events | OperationResult


class ErrorInfo(msgspec.Struct, frozen=True):
    code: str
    message: str


class Reply(msgspec.Struct, tag="reply", frozen=True):
    id: str
    result: Result | None = None
    error: ErrorInfo | None = None


class EventLogIdentity(msgspec.Struct, frozen=True):
    """Which durable event log a worker serves, so the gateway can tell a new or rewound
    ``chats.db`` (deleted, restored from a backup) from the log whose events it applied.

    ``epoch`` is minted with the log and stored in it; ``start_seq`` is the log's last
    sequence number when the worker opened it, so everything after it is new.
    """

    epoch: str
    start_seq: int


#: The gateway's event when a session's worker serves another event log than the one
#: its cursor counted in (``chats.db`` deleted or restored from a backup).
EVENT_LOG_REPLACED = "session.event_log_replaced"


class Hello(msgspec.Struct, tag="hello", frozen=True):
    """First message of a worker on the command socket: it is up and can take commands."""

    session_id: str
    pid: int
    started_at: float
    event_log: EventLogIdentity | None = None


ToGateway = Reply | Hello

# Exit code of a worker that wants a fresh process (a reconnect): not counted as a crash.
EXIT_RESTART = 75
# Exit code of a worker whose session store cannot be opened (damaged): a restart cannot
# help, so the session is FAILED at once.
EXIT_STORE_DAMAGED = 78
# A worker that fails writes why to this file in its session folder before it exits (the
# cause would otherwise be only in worker.log); the supervisor makes it the session's error.
EXIT_REASON_FILE = "exit-reason"

# Error codes a worker may put in a Reply; the gateway maps them to HTTP statuses.
ERR_NOT_LOGGED_IN = "SESSION_NOT_LOGGED_IN"
ERR_NOT_CONNECTED = "SESSION_NOT_CONNECTED"
ERR_ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN"
ERR_INVALID_JID = "INVALID_JID"
ERR_WHATSAPP = "WHATSAPP_ERROR"
ERR_INTERNAL = "WORKER_ERROR"
ERR_NOT_FOUND = "NOT_FOUND"
ERR_NOT_SUPPORTED = "NOT_SUPPORTED"
ERR_FFMPEG = "FFMPEG_NOT_AVAILABLE"
ERR_BAD_REQUEST = "VALIDATION_ERROR"
ERR_TOO_LARGE = "PAYLOAD_TOO_LARGE"

# ---------------------------------------------------------------------------
# Codec

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_to_gateway_decoder = msgspec.msgpack.Decoder(ToGateway)
_event_decoder = msgspec.msgpack.Decoder(Event)
_config_decoder = msgspec.json.Decoder(WorkerConfig)
_keys_decoder = msgspec.msgpack.Decoder(WorkerKeys)


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_request(data: bytes) -> Request:
    return _request_decoder.decode(data)


def decode_keys(data: bytes) -> WorkerKeys:
    return _keys_decoder.decode(data)


def decode_to_gateway(data: bytes | memoryview) -> Reply | Hello:
    return _to_gateway_decoder.decode(data)


def decode_event(data: bytes | memoryview) -> Event:
    return _event_decoder.decode(data)


def encode_config(config: WorkerConfig) -> str:
    return msgspec.json.encode(config).decode()


def decode_config(text: str) -> WorkerConfig:
    return _config_decoder.decode(text)
