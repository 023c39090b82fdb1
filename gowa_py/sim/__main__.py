"""``python -m gowa_py.sim [--host H] [--port P] [--data-dir D] [--max-upload-mb N]``."""

from __future__ import annotations

import argparse
import logging

from .media import DEFAULT_MAX_UPLOAD
from .server import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gowa_py.sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    parser.add_argument("--data-dir", default="./data/sim")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD / 2**20)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    run(args.host, args.port, args.data_dir, int(args.max_upload_mb * 2**20))


if __name__ == "__main__":
    main()
