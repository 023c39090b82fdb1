"""Gateway settings: command-line flags > ``GOWA_*`` environment > TOML file > defaults.

Every field of :class:`Settings` is a knob; ``config/gowa.example.toml`` documents each
one and the tests check that the two stay in step.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from gowa_py.errors import GowaError
from gowa_py.hosts import parse_allowed_hosts
from gowa_py.webhooks.policy import parse_networks

ENV_PREFIX = "GOWA_"
_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MB = 1024 * 1024
#: Upload fields that hold a picture (``max_image_mb``).
PICTURE_FIELDS = frozenset({"image", "sticker", "photo", "avatar"})


def parse_id_range(spec: str) -> tuple[int, int] | None:
    """``"70000-79999"`` -> (70000, 79999); ``"off"`` -> None; ValueError if malformed."""
    if spec.strip().lower() == "off":
        return None
    low, sep, high = spec.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError('expected "FIRST-LAST" (e.g. "70000-79999") or "off"')
    first, last = int(low), int(high)
    if not 1 <= first < last < 2**31:
        raise ValueError("expected 1 <= FIRST < LAST < 2147483648")
    return first, last


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str | None = None
    port: int = 3000
    data_dir: str = "./data"
    #: ``postgresql://...``: keep the registry and every session's data in PostgreSQL
    #: instead of SQLite files under ``data_dir`` (docs/storage.md).
    database_url: str | None = None
    #: ``postgresql://host:port/database`` of a PgBouncer in transaction mode in front of
    #: that database: workers log in there (as their session's role) instead of
    #: directly, so many sessions share a few server connections (docs/storage.md).
    database_pooler_url: str | None = None
    #: With PostgreSQL, the gateways sharing the database form a cluster
    #: (docs/cluster.md): this node's name (default: the host name) and the URL the
    #: other nodes reach it at (default: http://<host name or 127.0.0.1>:<port>).
    node_id: str | None = None
    advertise_url: str | None = None
    lease_ttl: float = 15.0
    lease_renew_interval: float = 5.0
    lease_margin: float = 3.0
    takeover_batch: int = 10
    #: What this node's workers may use in all (MB of PSS), weighed where sessions go
    #: (docs/cluster.md, "Placement"); unset: the machine's available memory less a
    #: reserve; 0: no limit.
    node_memory_mb: float | None = None
    api_key: str | None = None
    api_key_hash: str | None = None
    api_key_hash_threads: int = 1
    auth_max_failures: int = 10
    auth_failure_window: float = 300.0
    basic_auth: str | None = None
    allowed_hosts: str | None = None
    body_timeout: float = 30.0
    sandbox: str | None = None
    log_level: str = "INFO"
    worker_log_level: str = "INFO"
    command_timeout: float = 15.0
    start_timeout: float = 30.0
    stop_timeout: float = 10.0
    health_interval: float = 5.0
    health_timeout: float = 3.0
    health_failures: int = 3
    crash_limit: int = 5
    crash_window: float = 300.0
    qr_limit: int = 6
    silence_timeout: float = 180.0
    max_pairing: int = 20
    max_sessions: int = 1000
    webhook_url: str | None = None
    webhook_secret: str = "secret"
    webhook_events: str | None = None
    webhook_max_attempts: int = 20
    webhook_backoff_cap: float = 300.0
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 16
    webhook_allow_networks: str | None = None
    webhook_deny_networks: str | None = None
    webhook_retention_days: float = 7.0
    proxy_allow_networks: str | None = None
    webhook_open_outboxes: int = 64
    sample_interval: float = 5.0
    pss_sample_interval: float = 30.0
    metrics_retention_hours: float = 24.0
    max_body_mb: float = 16.0
    max_image_mb: float = 20.0
    max_file_mb: float = 50.0
    max_video_mb: float = 100.0
    max_download_mb: float = 100.0
    max_import_mb: float = 4096.0
    rate_limit: float = 20.0
    rate_limit_burst: int = 40
    min_free_disk_mb: float = 16.0
    start_concurrency: int = 0
    start_min_available_mb: float = 1024.0
    worker_mode: str = "zygote"
    worker_gogc: int | None = None
    worker_gomemlimit: str | None = None
    worker_timer_slack_ms: float = 5.0
    ksm: str = "auto"
    ksm_pages_to_scan: int = 1000
    worker_uids: str = "70000-79999"
    worker_log_max_mb: float = 5.0
    worker_memory_mb: int = 1024

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise msgspec.ValidationError(f"port must be between 1 and 65535, got {self.port}")
        if self.basic_auth is not None:
            for pair in self.basic_auth.split(","):
                user, sep, password = pair.strip().partition(":")
                if not sep or not user or not password:
                    raise msgspec.ValidationError(
                        "basic_auth must look like user:pass[,user2:pass2]"
                    )
        for name in ("webhook_allow_networks", "webhook_deny_networks", "proxy_allow_networks"):
            try:
                parse_networks(getattr(self, name))
            except ValueError as exc:
                raise msgspec.ValidationError(f"{name}: {exc}") from exc
        try:
            parse_allowed_hosts(self.allowed_hosts)
        except ValueError as exc:
            raise msgspec.ValidationError(f"allowed_hosts: {exc}") from exc
        if self.body_timeout <= 0:
            raise msgspec.ValidationError("body_timeout must be > 0 seconds")
        if self.webhook_max_attempts < 1 or self.webhook_concurrency < 1:
            raise msgspec.ValidationError(
                "webhook_max_attempts and webhook_concurrency must be at least 1"
            )
        if self.max_sessions < 0:
            raise msgspec.ValidationError("max_sessions must be >= 0 (0 = no limit)")
        if self.webhook_open_outboxes < 1:
            raise msgspec.ValidationError("webhook_open_outboxes must be at least 1")
        if self.rate_limit < 0 or self.rate_limit_burst < 1:
            raise msgspec.ValidationError("rate_limit must be >= 0 and rate_limit_burst >= 1")
        if self.api_key_hash is not None:
            from gowa_py.keyhash import check_format

            try:
                check_format(self.api_key_hash)
            except ValueError as exc:
                raise msgspec.ValidationError(f"api_key_hash: {exc}") from exc
        if self.auth_max_failures < 0 or self.auth_failure_window <= 0:
            raise msgspec.ValidationError(
                "auth_max_failures must be >= 0 (0 = off) and auth_failure_window > 0"
            )
        if self.api_key_hash_threads < 1:
            raise msgspec.ValidationError("api_key_hash_threads must be at least 1")
        if self.sample_interval <= 0 or self.pss_sample_interval < 0:
            raise msgspec.ValidationError(
                "sample_interval must be > 0 and pss_sample_interval >= 0"
            )
        if self.start_concurrency < 0:
            raise msgspec.ValidationError("start_concurrency must be >= 0 (0 = automatic)")
        if self.start_min_available_mb < 0:
            raise msgspec.ValidationError("start_min_available_mb must be >= 0 (0 = off)")
        if self.worker_mode not in ("zygote", "subprocess"):
            raise msgspec.ValidationError('worker_mode must be "zygote" or "subprocess"')
        if not 0 <= self.worker_timer_slack_ms <= 1000:
            raise msgspec.ValidationError("worker_timer_slack_ms must be between 0 and 1000")
        if self.ksm not in ("auto", "off"):
            raise msgspec.ValidationError('ksm must be "auto" or "off"')
        if self.ksm_pages_to_scan < 1:
            raise msgspec.ValidationError("ksm_pages_to_scan must be at least 1")
        if self.worker_memory_mb != 0 and self.worker_memory_mb < 64:
            raise msgspec.ValidationError("worker_memory_mb must be 0 (no ceiling) or >= 64")
        if min(self.max_body_mb, self.max_image_mb, self.max_file_mb, self.max_video_mb) <= 0:
            raise msgspec.ValidationError(
                "max_body_mb, max_image_mb, max_file_mb and max_video_mb must be > 0"
            )
        if self.worker_log_max_mb < 0.01:
            raise msgspec.ValidationError("worker_log_max_mb must be at least 0.01")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise msgspec.ValidationError(
                "database_url must be a postgresql://user@host:port/database URL"
            )
        if self.database_pooler_url and not (
            self.database_url
            and self.database_pooler_url.startswith(("postgresql://", "postgres://"))
        ):
            raise msgspec.ValidationError(
                "database_pooler_url must be a postgresql://host:port/database URL, and "
                "needs database_url"
            )
        if not 0 < 2 * self.lease_renew_interval < self.lease_ttl - self.lease_margin:
            raise msgspec.ValidationError(
                "lease_renew_interval must be > 0 and leave two renewals before "
                "lease_ttl - lease_margin"
            )
        if self.node_memory_mb is not None and self.node_memory_mb < 0:
            raise msgspec.ValidationError(
                "node_memory_mb must be >= 0 (0 = no limit; unset = from the machine)"
            )
        if self.lease_margin <= 0 or self.takeover_batch < 1:
            raise msgspec.ValidationError("lease_margin must be > 0 and takeover_batch >= 1")
        if self.node_id is not None and not _NODE_ID.fullmatch(self.node_id):
            raise msgspec.ValidationError("node_id must be 1-63 letters, digits, '.', '_' or '-'")
        if self.advertise_url is not None and not self.advertise_url.startswith(
            ("http://", "https://")
        ):
            raise msgspec.ValidationError("advertise_url must be an http:// or https:// URL")
        try:
            parse_id_range(self.worker_uids)
        except ValueError as exc:
            raise msgspec.ValidationError(f"worker_uids: {exc}") from exc

    def media_limit(self, field: str) -> int:
        """Bytes an upload field may hold, by GoWA's three sizes: pictures (image, sticker,
        group photo, avatar), videos, and every other file (documents, audio)."""
        if field in PICTURE_FIELDS:
            megabytes = self.max_image_mb
        elif field == "video":
            megabytes = self.max_video_mb
        else:
            megabytes = self.max_file_mb
        return int(megabytes * MB)

    @property
    def largest_body(self) -> int:
        """The most a request body may hold: the largest upload, plus a form's other
        fields (JSON bodies are held to ``max_body_mb`` by the gateway's body reader)."""
        largest = max(self.max_body_mb, self.max_image_mb, self.max_file_mb, self.max_video_mb)
        return int((largest + 1) * MB)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key or self.api_key_hash or self.basic_auth)

    @property
    def bind_host(self) -> str:
        """Without credentials the API is reachable from this machine only."""
        if not self.auth_enabled:
            return "127.0.0.1"
        return self.host or "0.0.0.0"

    @property
    def cluster_node_id(self) -> str:
        return self.node_id or socket.gethostname()

    @property
    def cluster_url(self) -> str:
        """Where the other nodes reach this one."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = self.bind_host
        if host == "0.0.0.0":
            host = socket.getfqdn()
        return f"http://{host}:{self.port}"

    @property
    def effective_start_concurrency(self) -> int:
        return self.start_concurrency or max(2, 4 * (os.cpu_count() or 1))

    @property
    def basic_auth_pairs(self) -> list[tuple[str, str]]:
        if not self.basic_auth:
            return []
        pairs = []
        for item in self.basic_auth.split(","):
            user, _, password = item.strip().partition(":")
            pairs.append((user, password))
        return pairs


FIELDS = tuple(Settings.__struct_fields__)
#: Settings that are credentials: read once at start, then dropped from the environment
#: (see gowa_py/secretenv.py) and never passed to a worker's environment (a worker gets
#: the database URL, which may hold a password, through its keys pipe).
SECRET_FIELDS = ("api_key", "api_key_hash", "basic_auth", "webhook_secret", "database_url")
SECRET_ENV = frozenset(ENV_PREFIX + name.upper() for name in SECRET_FIELDS)


class ConfigError(GowaError):
    """A setting that is missing, malformed or out of range; the message names it."""


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in FIELDS:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


def _from_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("gateway", data)
    unknown = sorted(set(section) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    return dict(section)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Merge the four sources; raises :class:`ConfigError` with the offending setting."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    file_path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if file_path:
        merged.update(_from_file(Path(file_path)))
    merged.update(_from_env(environ))
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
