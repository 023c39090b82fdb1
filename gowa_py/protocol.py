"""Every message that travels between the gateway and a worker, as msgspec structs.

This module is the single source of truth for the wire format: the gateway and the
workers import the same structs, and :func:`encode` / :func:`decode_*` are the only
(de)serialisers. Commands and results are tagged unions, so a new command is one new
struct plus one new union member.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

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
# Worker start-up: the environment variables the gateway sets for a worker (and for the
# zygote, whose forks inherit them), and the configuration the first one carries.

#: The worker's :class:`WorkerConfig` as JSON (:func:`encode_config`).
CONFIG_ENV = "GOWA_WORKER_CONFIG"
#: "1": opt the process in to same-page merging (KSM) before the Go library loads.
KSM_ENV = "GOWA_WORKER_KSM"
#: The process's timer slack in nanoseconds (fewer wake-ups of idle workers).
TIMER_SLACK_ENV = "GOWA_WORKER_TIMER_SLACK_NS"


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
    #: In a cluster, the first :class:`LeaseRenewed` time; None: no lease to watch.
    lease_valid_until: float | None = None
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
    #: Where the session's stores are: "" for SQLite files in the session dir, else the
    #: gateway's ``database_url`` (it may hold a password, hence here and not in the config).
    database_url: str = ""
    #: ``database_url`` is a pooler's (PgBouncer in transaction mode, the gateway's
    #: ``database_pooler_url``): no session state may outlive a transaction.
    database_pooled: bool = False


# ---------------------------------------------------------------------------
# The zygote's socket (workers/zygote.py <-> gowa_py.supervisor.zygote_client): JSON datagrams
# over a socketpair, file descriptors passed alongside (SCM_RIGHTS).


class ZygoteSpawn(msgspec.Struct, tag_field="op", tag="spawn", frozen=True):
    """Fork a worker; sent with two descriptors: its log file and its keys pipe."""

    req: int
    env: dict[str, str]
    cwd: str


class ZygoteReady(msgspec.Struct, tag_field="op", tag="ready", frozen=True):
    """The zygote has loaded the Go library and takes spawn requests."""

    pid: int


class ZygoteSpawned(msgspec.Struct, tag_field="op", tag="spawned", frozen=True):
    """Request ``req`` forked ``pid``; sent with a pidfd of the child."""

    req: int
    pid: int


class ZygoteFailed(msgspec.Struct, tag_field="op", tag="failed", frozen=True):
    req: int
    error: str


class ZygoteExit(msgspec.Struct, tag_field="op", tag="exit", frozen=True):
    """A forked worker ended (the zygote reaped it)."""

    pid: int
    code: int


ZygoteReport = ZygoteReady | ZygoteSpawned | ZygoteFailed | ZygoteExit


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


class ReplayEvents(msgspec.Struct, tag="replay", frozen=True):
    """Ask for durable events after ``after_seq`` (the gateway catching up after downtime)."""

    after_seq: int
    limit: int = 1000


class Shutdown(msgspec.Struct, tag="shutdown", frozen=True):
    pass


class LeaseRenewed(msgspec.Struct, tag="lease", frozen=True):
    """The session's lease is the worker's node's until ``valid_until``, in seconds of
    ``CLOCK_MONOTONIC`` (``time.monotonic()``, one clock for every process of the
    machine). A worker that is told of no later time by then disconnects and exits: its
    node stopped renewing (frozen, cut off), and another node may take the session."""

    valid_until: float


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
    | ReplayEvents
    | Shutdown
    | LeaseRenewed
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


Result = Pong | Status | QRCode | PairCode | Done | Events | OperationResult


class ErrorInfo(msgspec.Struct, frozen=True):
    code: ErrorCode
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
#: A session's state changed; the gateway keeps it (and the account) in its registry.
SESSION_STATUS = "session.status"
#: A session showed its last QR code unscanned; the gateway stops it.
SESSION_QR_EXPIRED = "session.qr_expired"
#: WhatsApp asked for the account's passkey while a session paired, which neonize cannot
#: answer; the gateway stops the session. Its ``code`` also begins the session's error.
SESSION_PASSKEY_REQUIRED = "session.passkey_required"
PASSKEY_REQUIRED = "PASSKEY_REQUIRED"
#: The events after which the gateway stops the session, keeping their ``message``.
PARKING_EVENTS = frozenset({SESSION_QR_EXPIRED, SESSION_PASSKEY_REQUIRED})
#: A session shows a new QR code; the gateway's login routes answer with it.
SESSION_QR = "session.qr"
#: The gateway deleted a session (registry row and files); listeners drop what they hold.
SESSION_DELETED = "session.deleted"


PayloadT = TypeVar("PayloadT", bound=msgspec.Struct)


class StatusPayload(msgspec.Struct, frozen=True):
    """The payload of ``session.status`` as the gateway reads it."""

    status: SessionState
    previous: SessionState | None = None
    error: str | None = None
    me: Me | None = None


class QRPayload(msgspec.Struct, frozen=True):
    """The payload of ``session.qr`` as the gateway reads it (``qr_duration``: seconds the
    code is shown; ``sequence``: its number since the session began pairing)."""

    qr_code: str
    qr_duration: float
    sequence: int = 0


class ParkingPayload(msgspec.Struct, frozen=True):
    """What the gateway reads of an event in :data:`PARKING_EVENTS`: why it stops the
    session."""

    message: str


def read_payload(event: Event, kind: type[PayloadT]) -> PayloadT | None:
    """``event``'s payload as ``kind``, or None when it does not fit (a worker's bug, or a
    worker that is not ours: the event is still passed on, the gateway just acts on none
    of it)."""
    try:
        return msgspec.convert(event.payload, kind)
    except msgspec.ValidationError:
        return None


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


class ErrorCode(enum.StrEnum):
    """Every ``code`` of an error envelope, with the HTTP status it is answered with and
    what it means. Workers put the first group in a :class:`Reply`; the gateway answers
    the rest itself. ``/openapi.json``'s error table is generated from this class.
    """

    status: int
    meaning: str

    def __new__(cls, value: str, status: int, meaning: str) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.status = status
        member.meaning = meaning
        return member

    # Answered by a worker.
    VALIDATION_ERROR = "VALIDATION_ERROR", 400, "a field of the request is invalid (named)"
    INVALID_JID = "INVALID_JID", 400, "a phone number or JID that WhatsApp cannot address"
    NOT_FOUND = "NOT_FOUND", 404, "no such thing (e.g. a message not in the chat storage)"
    SESSION_NOT_CONNECTED = "SESSION_NOT_CONNECTED", 409, "the session is not connected"
    SESSION_NOT_LOGGED_IN = "SESSION_NOT_LOGGED_IN", 409, "the session is not logged in"
    ALREADY_LOGGED_IN = "ALREADY_LOGGED_IN", 409, "the session is already logged in"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE", 413, "a body, upload or *_url media too large"
    NOT_SUPPORTED = "NOT_SUPPORTED", 422, "neonize has no such call"
    FFMPEG_NOT_AVAILABLE = "FFMPEG_NOT_AVAILABLE", 422, "this media needs ffmpeg, not installed"
    WHATSAPP_ERROR = "WHATSAPP_ERROR", 502, "WhatsApp refused; the message says why"
    WORKER_ERROR = "WORKER_ERROR", 500, "the session's worker failed (its log says why)"
    # Answered by the gateway.
    BAD_REQUEST = "BAD_REQUEST", 400, "a malformed HTTP request"
    INVALID_SESSION_ID = "INVALID_SESSION_ID", 400, "not a valid session id"
    ARCHIVE_INVALID = "ARCHIVE_INVALID", 400, "not a session archive, or a damaged or unsafe one"
    ARCHIVE_TOO_NEW = "ARCHIVE_TOO_NEW", 400, "an archive of a newer format or schema version"
    MEDIA_DOWNLOAD_FAILED = "MEDIA_DOWNLOAD_FAILED", 400, "a *_url could not be downloaded"
    MEDIA_URL_BLOCKED = "MEDIA_URL_BLOCKED", 400, "a *_url points at a blocked address"
    CLIENT_DISCONNECTED = "CLIENT_DISCONNECTED", 400, "the client closed the connection"
    UNAUTHORIZED = "UNAUTHORIZED", 401, "missing or wrong credentials"
    FORBIDDEN = "FORBIDDEN", 403, "a scoped API key outside its sessions or scope"
    CSRF_FAILED = "CSRF_FAILED", 403, "a dashboard request without its CSRF header"
    CROSS_SITE_REQUEST = "CROSS_SITE_REQUEST", 403, "a request from another web site"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND", 404, "no such session"
    DELIVERY_NOT_FOUND = "DELIVERY_NOT_FOUND", 404, "no such webhook delivery"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED", 405, "the route has no such method"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT", 408, "the request body arrived too slowly"
    SESSION_EXISTS = "SESSION_EXISTS", 409, "a session with this id already exists"
    SESSION_LIMIT = "SESSION_LIMIT", 409, "the gateway holds max_sessions sessions"
    SESSION_EXPORTED = "SESSION_EXPORTED", 409, "the session was exported; it must not run here too"
    SESSION_ELSEWHERE = "SESSION_ELSEWHERE", 409, "another node of the cluster runs the session"
    NOT_A_CLUSTER = "NOT_A_CLUSTER", 409, "the gateway is no cluster node (no PostgreSQL)"
    DEVICE_LIVE = "DEVICE_LIVE", 409, "the archived device may still be connected elsewhere"
    PASSKEY_NOT_PENDING = "PASSKEY_NOT_PENDING", 409, "no passkey request is pending"
    QR_NOT_AVAILABLE = "QR_NOT_AVAILABLE", 409, "the session is not showing a QR code"
    AUTH_DISABLED = "AUTH_DISABLED", 409, "scoped keys need an admin credential first"
    SANDBOX_DISABLED = "SANDBOX_DISABLED", 409, "the gateway runs without --sandbox"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE", 415, "the body's Content-Type"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED", 421, "the Host header is not this gateway's"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS", 429, "rate limit or auth throttle (Retry-After)"
    TOO_MANY_PAIRING = "TOO_MANY_PAIRING", 429, "max_pairing sessions are pairing already"
    INTERNAL_ERROR = "INTERNAL_ERROR", 500, "a gateway bug; the log has the reference"
    SANDBOX_UNREACHABLE = "SANDBOX_UNREACHABLE", 502, "the sandbox network does not answer"
    SANDBOX_ERROR = "SANDBOX_ERROR", 502, "the sandbox network refused"
    SESSION_UNAVAILABLE = "SESSION_UNAVAILABLE", 503, "worker stopped or not answering"
    SESSION_BUSY = "SESSION_BUSY", 503, "another start/stop/... is running (Retry-After)"
    NOT_READY = "NOT_READY", 503, "the gateway is still starting"
    DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE", 503, "PostgreSQL does not answer"
    INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE", 507, "the data dir's disk is full"
    HTTP_ERROR = "HTTP_ERROR", 400, "another HTTP error; the response's status is its own"

    @classmethod
    def for_status(cls, status: int) -> ErrorCode:
        """The code of a bare HTTP error (aiohttp's ``HTTPException`` and the like)."""
        return _CODE_OF_STATUS.get(status, cls.HTTP_ERROR)


_CODE_OF_STATUS = {
    code.status: code
    for code in (
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.NOT_FOUND,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.TOO_MANY_REQUESTS,
    )
}


# ---------------------------------------------------------------------------
# Codec

_encoder = msgspec.msgpack.Encoder()
_request_decoder = msgspec.msgpack.Decoder(Request)
_to_gateway_decoder = msgspec.msgpack.Decoder(ToGateway)
_event_decoder = msgspec.msgpack.Decoder(Event)
_config_decoder = msgspec.json.Decoder(WorkerConfig)
_zygote_encoder = msgspec.json.Encoder()
_zygote_request_decoder = msgspec.json.Decoder(ZygoteSpawn)
_zygote_report_decoder = msgspec.json.Decoder(ZygoteReport)
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


def encode_zygote(message: ZygoteSpawn | ZygoteReport) -> bytes:
    return _zygote_encoder.encode(message)


def decode_zygote_request(data: bytes) -> ZygoteSpawn:
    return _zygote_request_decoder.decode(data)


def decode_zygote_report(data: bytes) -> ZygoteReport:
    return _zygote_report_decoder.decode(data)
