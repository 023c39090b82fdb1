"""The ``gowa`` command: ``serve``, ``session ...`` and ``node ...`` (against a running
gateway), ``import``, ``backup``/``restore``, ``hash-key`` and ``sim serve``.

One module per command group; this one only puts them under ``main``.
"""

from __future__ import annotations

import click

from gowa_py.cli import archive, backup, importers, keys, node, serve, session, sim


@click.group()
@click.version_option(package_name="gowa-py")
def main() -> None:
    """gowa-py: many WhatsApp sessions, one isolated worker process each."""


session.session.add_command(archive.export)
session.session.add_command(archive.import_archive)
for _command in (
    serve.serve,
    keys.hash_key,
    session.session,
    node.node,
    backup.backup_,
    backup.restore_,
    sim.sim,
    importers.import_,
):
    main.add_command(_command)
