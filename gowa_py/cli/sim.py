"""``gowa sim serve``: the sandbox WhatsApp network."""

from __future__ import annotations

import click


@click.group()
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
