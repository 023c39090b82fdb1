"""Incoming media over ``max_download_mb`` is refused before anything is downloaded.

Runs in a child process: importing the worker's operations loads neonize's Go library,
which the test process itself must not carry into later forks.
"""

import subprocess
import sys

from tests.procs import ROOT

CHECK = """
from types import SimpleNamespace
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage, Message
from workers.operations.media import download_to_disk
from workers.errors import SessionError

class NoDownload:
    def download_any(self, message):
        raise AssertionError("downloaded although over the limit")

ctx = SimpleNamespace(client=NoDownload(), max_download_bytes=1024 * 1024)
message = Message(imageMessage=ImageMessage(mimetype="image/png", fileLength=5 * 1024 * 1024))
try:
    download_to_disk(ctx, "chat", "M1", message)
except SessionError as exc:
    print(exc.code, exc.message)
"""


def test_oversize_media_is_refused_before_download():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PAYLOAD_TOO_LARGE media of 5.0 MB is over the 1 MB")
