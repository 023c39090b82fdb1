"""Fixtures for the sandbox tests: a sandbox subprocess and neonize client processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import NeonizeClient, SandboxProcess


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    sim = SandboxProcess(tmp_path / "sim")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def clients() -> Iterator[list[NeonizeClient]]:
    """Register started clients here; they are killed after the test."""
    started: list[NeonizeClient] = []
    try:
        yield started
    finally:
        for client in started:
            client.stop()
