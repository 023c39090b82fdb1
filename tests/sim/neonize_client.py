"""Test harness: a real neonize client against the sandbox, as a subprocess.

``python neonize_client.py --db PATH --proxy URL --ca CA_PEM --root-key HEX [--no-patch]``

It performs the same three steps as a sandbox-mode worker (trust the CA, load neonize,
patch the root key; ``--no-patch`` skips the last one for the negative test), then hands
over to :func:`gowa_py.sim.agent.serve`, which prints events as JSON lines and executes
JSON commands from stdin.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gowa_py.sim import redirect as sandbox
from gowa_py.sim.agent import serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--proxy", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--root-key", required=True)
    parser.add_argument("--no-patch", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    sandbox.trust_ca(args.ca)
    from neonize import _binder  # noqa: F401  (loads the Go library)

    if not args.no_patch:
        root_key = bytes.fromhex(args.root_key)
        sandbox.patch_root_key(root_key)
        sandbox.patch_root_key(root_key)  # idempotent
    serve(args.db, args.proxy)


if __name__ == "__main__":
    main()
