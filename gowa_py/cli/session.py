"""``gowa session ...``: create, list, start, stop and delete sessions of a running gateway.

Moving a session between gateways (``export``/``import``) is in :mod:`gowa_py.cli.archive`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from gowa_py.cli.options import SESSION_ID
from gowa_py.cli.remote import Remote, show


@click.group()
@click.option("--url", envvar="GOWA_URL", default="http://127.0.0.1:3000", show_default=True)
@click.option("--api-key", envvar="GOWA_API_KEY", default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def session(ctx: click.Context, url: str, api_key: str | None, as_json: bool) -> None:
    """Manage sessions of a running gateway."""
    ctx.obj = Remote(url, api_key, as_json)


@session.command("create")
@SESSION_ID
@click.option("--webhook", multiple=True, help="Webhook URL (repeatable).")
@click.option("--proxy", default=None, help="Proxy URL for this session.")
@click.option("--no-start", is_flag=True, help="Create it stopped.")
@click.pass_obj
def create(
    remote: Remote, session_id: str, webhook: tuple[str, ...], proxy: str | None, no_start: bool
) -> None:
    """Create a session (and start it)."""
    config: dict[str, Any] = {"webhooks": [{"url": url} for url in webhook]}
    if proxy:
        config["proxy"] = proxy
    body = {"session_id": session_id, "config": config, "start": not no_start}
    show(remote, remote.call("POST", "/api/sessions", body))


@session.command("list")
@click.pass_obj
def list_(remote: Remote) -> None:
    """List sessions."""
    show(remote, remote.call("GET", "/api/sessions"))


@session.command("show")
@SESSION_ID
@click.pass_obj
def show_one(remote: Remote, session_id: str) -> None:
    """Show one session."""
    show(remote, remote.call("GET", f"/api/sessions/{session_id}"))


def _action(name: str, help_text: str) -> None:
    @session.command(name, help=help_text)
    @SESSION_ID
    @click.pass_obj
    def command(remote: Remote, session_id: str) -> None:
        show(remote, remote.call("POST", f"/api/sessions/{session_id}/{name}"))


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
def delete(remote: Remote, session_id: str, yes: bool) -> None:
    """Delete a session and all its files."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete session {session_id} and all its data?", abort=True)
    result = remote.call("DELETE", f"/api/sessions/{session_id}")
    if remote.as_json:
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
def qr(remote: Remote, session_id: str) -> None:
    """Draw the session's current login QR code in the terminal."""
    import segno

    result = remote.call("GET", f"/api/{session_id}/app/login")
    if remote.as_json:
        click.echo(json.dumps(result, indent=2))
        return
    segno.make_qr(result["qr_code"], error="l").terminal(compact=True)
    click.echo(f"scan within {result['qr_duration']} s  ({result['qr_link']})")
