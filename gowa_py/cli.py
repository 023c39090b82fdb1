"""The ``gowa`` command: ``serve``, ``session ...`` (against a running gateway), ``sim serve``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gowa_py.client import ApiFailure, GatewayClient
from gowa_py.config import ConfigError, load_settings
from gowa_py.ids import InvalidSessionId, check_session_id

if TYPE_CHECKING:
    from gowa_py.archive.manifest import Manifest


@click.group()
@click.version_option(package_name="gowa-py")
def main() -> None:
    """gowa-py: many WhatsApp sessions, one isolated worker process each."""


@main.command()
@click.option("--host", default=None, help="Bind address (only used when auth is configured).")
@click.option("--port", type=int, default=None, help="HTTP port [default: 3000].")
@click.option("--data-dir", default=None, help="Registry and session files [default: ./data].")
@click.option(
    "--database-url",
    default=None,
    help="postgresql://... to keep all state in PostgreSQL [default: SQLite in the data dir]; "
    "prefer GOWA_DATABASE_URL or the config file for a URL with a password.",
)
@click.option(
    "--node-id", default=None, help="This node's name in a cluster [default: the host name]."
)
@click.option(
    "--advertise-url",
    default=None,
    help="URL the other nodes of a cluster reach this one at [default: http://HOST:PORT].",
)
@click.option("--config", "config_file", default=None, help="TOML settings file.")
@click.option("--sandbox", default=None, help="Run every session against this sandbox URL.")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR.")
def serve(**flags: Any) -> None:
    """Start the gateway and bring back every session that was running."""
    import psycopg

    from gowa_py.serve import DataDirBusy
    from gowa_py.serve import serve as run
    from gowa_py.storage.migrations import SchemaTooNew

    config_file = flags.pop("config_file")
    try:
        settings = load_settings(flags, config_file=config_file)
        run(settings)
    except (ConfigError, DataDirBusy, SchemaTooNew) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, psycopg.OperationalError) as exc:
        raise click.ClickException(f"cannot start: {exc}") from exc


@main.command("hash-key")
@click.option(
    "--slow",
    is_flag=True,
    help="PBKDF2 with a random salt, for a key a person chose (default: SHA-256 of a random key).",
)
def hash_key(slow: bool) -> None:
    """Print a new random API key and the api_key_hash line for the config file.

    With --slow, reads a key of your choosing from stdin (or asks for it) instead.
    """
    import secrets

    from gowa_py.keyhash import hash_key as make_hash

    if slow and not sys.stdin.isatty():
        key = sys.stdin.readline().rstrip("\n")
    elif slow:
        key = click.prompt("API key", hide_input=True, confirmation_prompt=True)
    else:
        key = secrets.token_urlsafe(32)
        click.echo(f"API key (give it to clients, it is not stored): {key}", err=True)
    if not key:
        raise click.ClickException("the key is empty")
    click.echo(f'api_key_hash = "{make_hash(key, slow=slow)}"')


# ---------------------------------------------------------------- sessions


class _Ctx:
    def __init__(self, url: str, api_key: str | None, as_json: bool) -> None:
        self.client = GatewayClient(url, api_key)
        self.as_json = as_json

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.call(method, path, body)
        except ApiFailure as exc:
            raise click.ClickException(str(exc)) from exc


@main.group()
@click.option("--url", envvar="GOWA_URL", default="http://127.0.0.1:3000", show_default=True)
@click.option("--api-key", envvar="GOWA_API_KEY", default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def session(ctx: click.Context, url: str, api_key: str | None, as_json: bool) -> None:
    """Manage sessions of a running gateway."""
    ctx.obj = _Ctx(url, api_key, as_json)


def _session_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return check_session_id(value)
    except InvalidSessionId as exc:
        raise click.BadParameter(f"{exc.code}: {exc}") from exc


SESSION_ID = click.argument("session_id", callback=_session_id)

COLUMNS = ("id", "status", "pid", "pss_mb", "restarts", "jid")


def _row(s: dict[str, Any]) -> dict[str, str]:
    worker = s.get("worker") or {}
    pss = (worker.get("memory") or {}).get("pss") or 0
    return {
        "id": s["id"],
        "status": f"{s['status']} (hibernating)" if s.get("hibernating") else s["status"],
        "pid": str(worker.get("pid") or "-"),
        "pss_mb": f"{pss / 1048576:.1f}" if pss else "-",
        "restarts": str(worker.get("restarts", 0)),
        "jid": (s.get("me") or {}).get("jid", "-") if s.get("me") else "-",
    }


def _table(rows: list[dict[str, str]]) -> str:
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _show(ctx: _Ctx, result: Any) -> None:
    if ctx.as_json:
        click.echo(json.dumps(result, indent=2))
    elif isinstance(result, list):
        click.echo(_table([_row(s) for s in result]) if result else "no sessions")
    elif isinstance(result, dict) and "status" in result and "id" in result:
        click.echo(_table([_row(result)]))
        if result.get("error"):
            click.echo(f"error: {result['error']}")
    else:
        click.echo(json.dumps(result, indent=2))


@session.command("create")
@SESSION_ID
@click.option("--webhook", multiple=True, help="Webhook URL (repeatable).")
@click.option("--proxy", default=None, help="Proxy URL for this session.")
@click.option("--no-start", is_flag=True, help="Create it stopped.")
@click.pass_obj
def create(
    ctx: _Ctx, session_id: str, webhook: tuple[str, ...], proxy: str | None, no_start: bool
) -> None:
    """Create a session (and start it)."""
    config: dict[str, Any] = {"webhooks": [{"url": url} for url in webhook]}
    if proxy:
        config["proxy"] = proxy
    body = {"session_id": session_id, "config": config, "start": not no_start}
    _show(ctx, ctx.call("POST", "/api/sessions", body))


@session.command("list")
@click.pass_obj
def list_(ctx: _Ctx) -> None:
    """List sessions."""
    _show(ctx, ctx.call("GET", "/api/sessions"))


@session.command("show")
@SESSION_ID
@click.pass_obj
def show(ctx: _Ctx, session_id: str) -> None:
    """Show one session."""
    _show(ctx, ctx.call("GET", f"/api/sessions/{session_id}"))


def _action(name: str, help_text: str) -> None:
    @session.command(name, help=help_text)
    @SESSION_ID
    @click.pass_obj
    def command(ctx: _Ctx, session_id: str) -> None:
        _show(ctx, ctx.call("POST", f"/api/sessions/{session_id}/{name}"))


for _name, _help in (
    ("start", "Start a session's worker."),
    ("stop", "Stop a session's worker (keeps its files)."),
    ("restart", "Restart a session's worker."),
    ("logout", "Log the session out of WhatsApp."),
):
    _action(_name, _help)


@session.command("delete")
@SESSION_ID
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(ctx: _Ctx, session_id: str, yes: bool) -> None:
    """Delete a session and all its files."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete session {session_id} and all its data?", abort=True)
    result = ctx.call("DELETE", f"/api/sessions/{session_id}")
    if ctx.as_json:
        click.echo(json.dumps(result))
    elif result.get("unlinked", True):
        click.echo(f"deleted {session_id}")
    else:
        click.echo(
            f"deleted {session_id}; it was not connected, so it could not be logged out of "
            "WhatsApp: remove it from the phone's linked devices"
        )


@session.command("qr")
@SESSION_ID
@click.pass_obj
def qr(ctx: _Ctx, session_id: str) -> None:
    """Draw the session's current login QR code in the terminal."""
    import segno

    result = ctx.call("GET", f"/api/{session_id}/app/login")
    if ctx.as_json:
        click.echo(json.dumps(result, indent=2))
        return
    segno.make_qr(result["qr_code"], error="l").terminal(compact=True)
    click.echo(f"scan within {result['qr_duration']} s  ({result['qr_link']})")


# ------------------------------------------------------------ export/import

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Work on this data dir directly, with its gateway stopped (default: through the "
    "running gateway at --url).",
)


@session.command("export")
@SESSION_ID
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the session running here (the archive then refuses to import without "
    "--force: a device must never run twice).",
)
@DATA_DIR
@click.pass_obj
def export(
    ctx: _Ctx, session_id: str, file: Path, keep_running: bool, data_dir: Path | None
) -> None:
    """Write the session to one archive FILE; it is stopped and marked exported here."""
    from gowa_py.archive import offline
    from gowa_py.errors import GowaError

    try:
        if data_dir is not None:
            manifest = offline.export_session(data_dir, session_id, file, keep_running)
        else:
            manifest = _download(ctx, session_id, file, keep_running)
    except GowaError as exc:
        raise click.ClickException(str(exc)) from exc
    size = file.stat().st_size
    jid = manifest.device_jid or "not logged in"
    click.echo(f"exported {session_id} ({jid}) to {file}: {len(manifest.files)} files, {size} B")
    if not keep_running:
        click.echo(f"{session_id} is stopped and marked exported here", err=True)


def _download(ctx: _Ctx, session_id: str, file: Path, keep_running: bool) -> Manifest:
    """The archive from the running gateway, checked whole before it takes FILE's name."""
    import os

    from gowa_py.archive import pack

    query = "?keep_running=true" if keep_running else ""
    part = file.with_name(file.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            ctx.client.download(f"/api/sessions/{session_id}/export{query}", out)
        with tempfile.TemporaryDirectory(dir=file.parent) as tmp, part.open("rb") as source:
            manifest = pack.unpack(source, Path(tmp) / "check")
        os.replace(part, file)
    except ApiFailure as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        part.unlink(missing_ok=True)
    return manifest


@session.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_id", default=None, help="Session id to import it as [default: its own].")
@click.option("--force", is_flag=True, help="Import even if the device may be live elsewhere.")
@click.option("--no-start", is_flag=True, help="Do not start it after the import.")
@DATA_DIR
@click.pass_obj
def import_archive(
    ctx: _Ctx,
    file: Path,
    as_id: str | None,
    force: bool,
    no_start: bool,
    data_dir: Path | None,
) -> None:
    """Bring a session archive FILE into a gateway; it connects without a new QR code."""
    from gowa_py.archive import offline, pack
    from gowa_py.errors import GowaError

    try:
        if data_dir is not None:
            session_id, _ = offline.import_session(data_dir, file, as_id, force, not no_start)
            click.echo(f"imported {file} as {session_id} into {data_dir}")
            return
        with file.open("rb") as source:
            session_id = check_session_id(as_id or pack.peek(source).session_id)
    except GowaError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        ctx.client.call("GET", f"/api/sessions/{session_id}")
    except ApiFailure as exc:
        if exc.status != 404:
            raise click.ClickException(str(exc)) from exc
    else:
        raise click.ClickException(f"session {session_id!r} already exists")
    query = f"force={str(force).lower()}&start={str(not no_start).lower()}"
    with file.open("rb") as source:
        try:
            result = ctx.client.upload(
                f"/api/sessions/{session_id}/import?{query}",
                source,
                file.stat().st_size,
                "application/gzip",
            )
        except ApiFailure as exc:
            raise click.ClickException(str(exc)) from exc
    _show(ctx, result)


# ----------------------------------------------------------- backup/restore


def _data_dir(data_dir: str | None, config_file: str | None) -> Path:
    """The data dir the gateway would use with these flags and its config, whose
    databases must be SQLite files (PostgreSQL has its own tools: docs/backup.md)."""
    try:
        settings = load_settings({"data_dir": data_dir}, config_file=config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.database_url:
        raise click.ClickException(
            "this gateway keeps its state in PostgreSQL (database_url): back it up with "
            "pg_dump and restore it with pg_restore (docs/backup.md)"
        )
    return Path(settings.data_dir)


@main.command("backup")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="The gateway's data dir [default: ./data].")
@click.option("--config", "config_file", default=None, help="TOML settings file.")
def backup_(target: Path, data_dir: str | None, config_file: str | None) -> None:
    """Copy the registry and every session into the new folder TARGET, while the
    gateway runs (run it as the gateway's user, on its machine)."""
    from gowa_py.archive.backup import backup
    from gowa_py.errors import GowaError

    try:
        manifest = backup(_data_dir(data_dir, config_file), target)
    except GowaError as exc:
        raise click.ClickException(str(exc)) from exc
    size = sum(entry.size for entry in manifest.files.values())
    click.echo(
        f"backed up {len(manifest.sessions)} session(s) to {target}: "
        f"{len(manifest.files)} files, {size} B in {manifest.seconds:.2f} s"
    )


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="The data dir to restore into [default: ./data].")
@click.option("--config", "config_file", default=None, help="TOML settings file.")
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a data dir that is not empty (its contents "
    "are moved into replaced-<time>/ inside it).",
)
def restore_(source: Path, data_dir: str | None, config_file: str | None, force: bool) -> None:
    """Put the backup in SOURCE into a data dir no gateway is using."""
    from gowa_py.archive.backup import restore
    from gowa_py.errors import GowaError

    folder = _data_dir(data_dir, config_file)
    try:
        manifest = restore(source, folder, force)
    except GowaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"restored {len(manifest.sessions)} session(s) of {manifest.created_at} into {folder}; "
        "never run them in two places at once (docs/backup.md)"
    )


# --------------------------------------------------------------------- sim


@main.group()
def sim() -> None:
    """The sandbox WhatsApp network (for tests and development without a phone)."""


@sim.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3100, show_default=True)
@click.option("--data-dir", default="./data/sim", show_default=True)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=128.0,
    show_default=True,
    help="Largest media upload the sandbox CDN stores (larger ones get a 413).",
)
def sim_serve(host: str, port: int, data_dir: str, max_upload_mb: float) -> None:
    """Run the sandbox network (HTTP CONNECT proxy + its JSON API on one port)."""
    from gowa_py.sim.server import run

    run(host, port, data_dir, int(max_upload_mb * 2**20))


# ------------------------------------------------------------------ import


@main.group("import")
def import_() -> None:
    """Bring sessions in from another gateway (run it while `gowa serve` is stopped)."""


@import_.command("gowa")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--data-dir", default=None, help="The gateway's data dir [default: ./data].")
@click.option("--config", "config_file", default=None, help="TOML settings file.")
@click.option(
    "--db-uri", default=None, help="GoWA's DB_URI (file:... or postgres://...), instead of PATH's."
)
@click.option("--keys-db-uri", default=None, help="GoWA's DB_KEYS_URI, if it set one.")
@click.option("--chat-storage-uri", default=None, help="GoWA's CHAT_STORAGE_URI, if not in PATH.")
@click.option("--with-webhooks", is_flag=True, help="Carry GoWA's webhooks over.")
@click.option(
    "--with-settings",
    is_flag=True,
    help="Carry GoWA's WHATSAPP_AUTO_*, WHATSAPP_PRESENCE_ON_CONNECT and WHATSAPP_PROXY over.",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="GoWA's .env, read with --with-webhooks/--with-settings [default: PATH/../.env].",
)
@click.option(
    "--session-id",
    callback=lambda ctx, param, value: value and _session_id(ctx, param, value),
    default=None,
    help="Name of the session when the store has one device (e.g. default, which "
    "GoWA's unprefixed routes reach) [default: GoWA's device id, else the number].",
)
@click.option("--dry-run", is_flag=True, help="Print what would be imported; write nothing.")
@click.option(
    "--remove-from-source",
    is_flag=True,
    help="After a successful import, delete the imported devices from GoWA's databases.",
)
def import_gowa(path: Path | None, **flags: Any) -> None:
    """Import a GoWA installation (PATH: its storages/ folder), one session per device.

    GoWA must be stopped. The logins move: the sessions connect without a QR code, and
    GoWA must not be started again with the same store (see docs/migrating-from-gowa.md).
    """
    import os

    from dotenv import dotenv_values

    from gowa_py.importers import ImportRefused
    from gowa_py.importers.command import ImportOptions
    from gowa_py.importers.command import import_gowa as run
    from gowa_py.importers.gowa_settings import Carry

    try:
        settings = load_settings({"data_dir": flags["data_dir"]}, config_file=flags["config_file"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    env: dict[str, str] = {}
    if flags["with_webhooks"] or flags["with_settings"]:
        env_file = flags["env_file"] or (path.parent / ".env" if path is not None else None)
        if env_file is not None and env_file.is_file():
            env = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        # As in GoWA, the environment overrides its .env.
        env.update({k: v for k, v in os.environ.items() if k.startswith("WHATSAPP_")})
    carry = Carry(env, webhooks=flags["with_webhooks"], behaviour=flags["with_settings"])
    options = ImportOptions(
        folder=path,
        data_dir=Path(settings.data_dir),
        db_uri=flags["db_uri"],
        keys_uri=flags["keys_db_uri"],
        chats_uri=flags["chat_storage_uri"],
        carry=carry,
        session_id=flags["session_id"],
        dry_run=flags["dry_run"],
        remove_from_source=flags["remove_from_source"],
        database_url=settings.database_url,
    )
    try:
        run(options, click.echo)
    except ImportRefused as exc:
        raise click.ClickException(str(exc)) from exc
