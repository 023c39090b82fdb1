"""Where incoming media is saved: never where the sender's message id or file name points.

Runs in a child process: importing the worker's operations loads neonize's Go library,
which the test process itself must not carry into later forks.
"""

import json
import subprocess
import sys

from tests.procs import ROOT

CHECK = """
import json, sys
from pathlib import Path
from workers.operations.media import media_path

media = Path(sys.argv[1])
cases = [
    ("../../whatsmeow", {"filename": "x.db"}),
    ("/etc/passwd", {}),
    ("ABC", {"filename": "evil./../../whatsmeow"}),
    ("ABC", {"filename": "a.sh\\x00", "mimetype": "image/png"}),
    ("3EB0C0FFEE", {"filename": "report.PDF"}),
    ("3EB0C0FFEE", {"mimetype": "image/jpeg"}),
]
chat = "1@s.whatsapp.net"
print(json.dumps([str(media_path(media, "document", chat, i, info)) for i, info in cases]))
"""


def test_media_names_come_from_a_hash_and_a_plain_extension(tmp_path):
    media = tmp_path / "media"
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(media)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    paths = json.loads(result.stdout)
    for path in paths:
        parent, name = path.rsplit("/", 1)
        assert parent == str(media / "document")
        stem, suffix = name.split(".")
        assert len(stem) == 32 and suffix.isalnum()
    assert [p.rsplit(".", 1)[1] for p in paths] == ["db", "bin", "bin", "png", "PDF", "jpg"]
    assert paths[4] != paths[0] and len(set(paths[:4])) == 4
