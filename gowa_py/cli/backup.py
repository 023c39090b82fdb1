"""``gowa backup`` and ``gowa restore``: a whole SQLite data dir, copied while it runs."""

from __future__ import annotations

from pathlib import Path

import click

from gowa_py.config import ConfigError, load_settings


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


@click.command("backup")
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


@click.command("restore")
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
