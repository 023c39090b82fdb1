"""``gowa import gowa``: sessions brought in from a stopped GoWA installation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gowa_py.cli.options import session_id_value
from gowa_py.config import ConfigError, load_settings


@click.group("import")
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
    callback=lambda ctx, param, value: value and session_id_value(ctx, param, value),
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
