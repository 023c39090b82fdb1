"""The gateway's secrets leave its environment (the exec-time block /proc shows included),
and a process that is not dumpable keeps /proc/<pid>/environ from its own uid."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.procs import ROOT

NOBODY = 65534

FORGET = """
import os, sys, time
from gowa_py import secretenv
print(secretenv.forget(["GOWA_API_KEY", "GOWA_BASIC_AUTH"]), os.environ.get("GOWA_API_KEY"))
sys.stdout.flush()
time.sleep(60)
"""


def test_forget_wipes_the_values_from_the_exec_environment():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GOWA_API_KEY": "s3cret-key-value"}
    env["GOWA_BASIC_AUTH"] = "admin:s3cret-password"
    process = subprocess.Popen([sys.executable, "-c", FORGET], env=env, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.strip() == "['GOWA_API_KEY', 'GOWA_BASIC_AUTH'] None"
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        assert b"s3cret" not in environ
        assert f"PYTHONPATH={ROOT}".encode() in environ.split(b"\0")  # the rest intact
    finally:
        process.kill()
        process.wait()


def _as_nobody(action: Callable[[], None]) -> int:
    """Fork, become uid ``nobody`` (no capability left) and run ``action``; its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            action()
            code = 0
        finally:
            os._exit(code)
    return pid


def _readable_by_same_uid(dumpable: bool) -> bool:
    from gowa_py import secretenv

    def holder() -> None:
        if dumpable:  # switching uid cleared the flag; a gateway starts with it set
            ctypes.CDLL(None).prctl(secretenv.PR_SET_DUMPABLE, 1, 0, 0, 0)
        else:
            secretenv.undumpable()
        time.sleep(60)

    def reader() -> None:
        Path(f"/proc/{target}/environ").read_bytes()

    target = _as_nobody(holder)
    try:
        time.sleep(0.3)
        _, status = os.waitpid(_as_nobody(reader), 0)
        return os.waitstatus_to_exitcode(status) == 0
    finally:
        os.kill(target, signal.SIGKILL)
        os.waitpid(target, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_undumpable_closes_environ_to_processes_of_the_same_uid():
    assert _readable_by_same_uid(dumpable=True)
    assert not _readable_by_same_uid(dumpable=False)
