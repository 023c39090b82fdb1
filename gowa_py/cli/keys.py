"""``gowa hash-key``: a new API key and the ``api_key_hash`` line that admits it."""

from __future__ import annotations

import sys

import click


@click.command("hash-key")
@click.option(
    "--slow",
    is_flag=True,
    help="PBKDF2 with a random salt, for a key a person chose (default: SHA-256 of a random key).",
)
def hash_key(slow: bool) -> None:
    """Print a new random API key and the api_key_hash line for the config file.

    With --slow, reads a key of your choosing from stdin (or asks for it) instead.
    """
    import secrets

    from gowa_py.keyhash import hash_key as make_hash

    if slow and not sys.stdin.isatty():
        key = sys.stdin.readline().rstrip("\n")
    elif slow:
        key = click.prompt("API key", hide_input=True, confirmation_prompt=True)
    else:
        key = secrets.token_urlsafe(32)
        click.echo(f"API key (give it to clients, it is not stored): {key}", err=True)
    if not key:
        raise click.ClickException("the key is empty")
    click.echo(f'api_key_hash = "{make_hash(key, slow=slow)}"')
