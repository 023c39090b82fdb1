"""``gowa node list|drain ID``: the nodes of a cluster (gateways sharing one PostgreSQL),
through any node's API."""

from __future__ import annotations

import json

import click

from gowa_py.cli.remote import Remote


@click.group()
@click.option("--url", envvar="GOWA_URL", default="http://127.0.0.1:3000", show_default=True)
@click.option("--api-key", envvar="GOWA_API_KEY", default=None)
@click.pass_context
def node(ctx: click.Context, url: str, api_key: str | None) -> None:
    """The nodes of a cluster (gateways sharing one PostgreSQL), through any node."""
    ctx.obj = Remote(url, api_key, as_json=True)


@node.command("list")
@click.pass_obj
def node_list(remote: Remote) -> None:
    """List the nodes: id, url, status, last heartbeat, sessions."""
    click.echo(json.dumps(remote.call("GET", "/api/cluster/nodes"), indent=2))


@node.command("drain")
@click.argument("node_id")
@click.pass_obj
def node_drain(remote: Remote, node_id: str) -> None:
    """Move the node's sessions to the other nodes (before upgrading it)."""
    click.echo(json.dumps(remote.call("POST", f"/api/cluster/nodes/{node_id}/drain"), indent=2))
