"""The running gateway a ``gowa session ...`` command talks to, and how its answers print."""

from __future__ import annotations

import json
from typing import Any

import click

from gowa_py.client import ApiFailure, GatewayClient


class Remote:
    """The client for ``--url``/``--api-key`` and the ``--json`` choice, shared by the
    subcommands through click's context object."""

    def __init__(self, url: str, api_key: str | None, as_json: bool) -> None:
        self.client = GatewayClient(url, api_key)
        self.as_json = as_json

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            return self.client.call(method, path, body)
        except ApiFailure as exc:
            raise click.ClickException(str(exc)) from exc


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


def show(remote: Remote, result: Any) -> None:
    """Print a session, a list of them or any other answer, as a table or as JSON."""
    if remote.as_json:
        click.echo(json.dumps(result, indent=2))
    elif isinstance(result, list):
        click.echo(_table([_row(s) for s in result]) if result else "no sessions")
    elif isinstance(result, dict) and "status" in result and "id" in result:
        click.echo(_table([_row(result)]))
        if result.get("error"):
            click.echo(f"error: {result['error']}")
    else:
        click.echo(json.dumps(result, indent=2))
