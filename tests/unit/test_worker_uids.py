"""Workers get a uid each only where that uid can load what they load after switching:
neonize's Go library. A venv in a folder closed to other users (under /root, say) with
an open data dir kept every worker crashing at start instead of staying root."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gowa_py.supervisor import identity

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="worker uids need a root gateway")


def _folders(tmp_path: Path, library_mode: int) -> tuple[Path, Path]:
    data = tmp_path / "data"
    data.mkdir()
    closed = tmp_path / "venv"
    closed.mkdir(mode=library_mode)
    closed.chmod(library_mode)
    library = closed / "site-packages" / "neonize"
    library.mkdir(parents=True)
    return data, library


def test_a_closed_go_library_folder_keeps_workers_root(open_tmp, monkeypatch, caplog):
    data, library = _folders(open_tmp, 0o700)
    monkeypatch.setattr(identity, "_go_library_folder", lambda: library)
    with caplog.at_level(logging.ERROR, logger=identity.log.name):
        ids = identity.WorkerIds("70000-70010", data)
    assert not ids.enabled
    assert "neonize's Go library" in caplog.text and str(open_tmp / "venv") in caplog.text


def test_an_open_go_library_folder_gives_workers_their_uids(open_tmp, monkeypatch):
    data, library = _folders(open_tmp, 0o755)
    monkeypatch.setattr(identity, "_go_library_folder", lambda: library)
    assert identity.WorkerIds("70000-70010", data).enabled
