"""``gowa session export`` and ``gowa session import``: a session as one archive file,
through the running gateway or straight on a stopped gateway's data dir."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gowa_py.cli.options import SESSION_ID
from gowa_py.cli.remote import Remote, show
from gowa_py.client import ApiFailure
from gowa_py.ids import check_session_id

if TYPE_CHECKING:
    from gowa_py.archive.manifest import Manifest

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Work on this data dir directly, with its gateway stopped (default: through the "
    "running gateway at --url).",
)


@click.command("export")
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
    remote: Remote, session_id: str, file: Path, keep_running: bool, data_dir: Path | None
) -> None:
    """Write the session to one archive FILE; it is stopped and marked exported here."""
    from gowa_py.archive import offline
    from gowa_py.errors import GowaError

    try:
        if data_dir is not None:
            manifest = offline.export_session(data_dir, session_id, file, keep_running)
        else:
            manifest = _download(remote, session_id, file, keep_running)
    except GowaError as exc:
        raise click.ClickException(str(exc)) from exc
    size = file.stat().st_size
    jid = manifest.device_jid or "not logged in"
    click.echo(f"exported {session_id} ({jid}) to {file}: {len(manifest.files)} files, {size} B")
    if not keep_running:
        click.echo(f"{session_id} is stopped and marked exported here", err=True)


def _download(remote: Remote, session_id: str, file: Path, keep_running: bool) -> Manifest:
    """The archive from the running gateway, checked whole before it takes FILE's name."""
    import os

    from gowa_py.archive import pack

    query = "?keep_running=true" if keep_running else ""
    part = file.with_name(file.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            remote.client.download(f"/api/sessions/{session_id}/export{query}", out)
        with tempfile.TemporaryDirectory(dir=file.parent) as tmp, part.open("rb") as source:
            manifest = pack.unpack(source, Path(tmp) / "check")
        os.replace(part, file)
    except ApiFailure as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        part.unlink(missing_ok=True)
    return manifest


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_id", default=None, help="Session id to import it as [default: its own].")
@click.option("--force", is_flag=True, help="Import even if the device may be live elsewhere.")
@click.option("--no-start", is_flag=True, help="Do not start it after the import.")
@DATA_DIR
@click.pass_obj
def import_archive(
    remote: Remote,
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
        remote.client.call("GET", f"/api/sessions/{session_id}")
    except ApiFailure as exc:
        if exc.status != 404:
            raise click.ClickException(str(exc)) from exc
    else:
        raise click.ClickException(f"session {session_id!r} already exists")
    query = f"force={str(force).lower()}&start={str(not no_start).lower()}"
    with file.open("rb") as source:
        try:
            result = remote.client.upload(
                f"/api/sessions/{session_id}/import?{query}",
                source,
                file.stat().st_size,
                "application/gzip",
            )
        except ApiFailure as exc:
            raise click.ClickException(str(exc)) from exc
    show(remote, result)
