"""Launching one worker OS process, and ending it: politely, then firmly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from gowa_py import protocol as p

CONFIG_ENV = "GOWA_WORKER_CONFIG"
LOG_ROTATE_BYTES = 5 * 1024 * 1024


def _open_log(session_dir: Path) -> int:
    """The worker's stdout/stderr file, rotated once it passes 5 MB."""
    path = session_dir / "worker.log"
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            path.replace(session_dir / "worker.log.1")
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


async def spawn(config: p.WorkerConfig) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    env[CONFIG_ENV] = p.encode_config(config)
    # One Go scheduler thread is plenty for one session and keeps idle workers small.
    env.setdefault("GOMAXPROCS", "1")
    log_fd = _open_log(Path(config.session_dir))
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            cwd=config.session_dir,
        )
    finally:
        os.close(log_fd)


async def terminate(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM, wait ``grace`` s, then SIGKILL; returns the exit code."""
    if process.returncode is not None:
        return process.returncode
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
        # A stopped (SIGSTOP) process only acts on SIGTERM once it runs again.
        process.send_signal(signal.SIGCONT)
    try:
        return await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        return await kill(process)


async def kill(process: asyncio.subprocess.Process) -> int:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    return await process.wait()
