"""Command-line parameters more than one command group takes."""

from __future__ import annotations

import click

from gowa_py.ids import InvalidSessionId, check_session_id


def session_id_value(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A session id checked before it reaches the gateway or names a file."""
    try:
        return check_session_id(value)
    except InvalidSessionId as exc:
        raise click.BadParameter(f"{exc.code}: {exc}") from exc


SESSION_ID = click.argument("session_id", callback=session_id_value)
