"""``gowa serve``: start the gateway from flags, the environment and a config file."""

from __future__ import annotations

from typing import Any

import click

from gowa_py.config import ConfigError, load_settings


@click.command()
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
    "--database-pooler-url",
    default=None,
    help="postgresql://HOST:PORT/DATABASE of a PgBouncer in front of the database: workers "
    "connect there [default: directly].",
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

    from gowa_py.cluster.node import NodeIdInUse
    from gowa_py.serve import DataDirBusy
    from gowa_py.serve import serve as run
    from gowa_py.storage.migrations import SchemaTooNew

    config_file = flags.pop("config_file")
    try:
        settings = load_settings(flags, config_file=config_file)
        run(settings)
    except (ConfigError, DataDirBusy, SchemaTooNew, NodeIdInUse) as exc:
        raise click.ClickException(str(exc)) from exc
    except (OSError, psycopg.OperationalError) as exc:
        raise click.ClickException(f"cannot start: {exc}") from exc
