"""``gowa serve --sandbox URL``: ask the sandbox how workers should reach it."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from gowa_py.errors import GowaError
from gowa_py.protocol import SandboxConfig


class SandboxUnreachable(GowaError):
    pass


async def fetch_sandbox_config(url: str, data_dir: Path) -> SandboxConfig:
    """Read ``/sim/info`` and store the sandbox CA where workers can load it."""
    info_url = url.rstrip("/") + "/sim/info"
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as http,
            http.get(info_url) as response,
        ):
            response.raise_for_status()
            info = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SandboxUnreachable(f"cannot read {info_url}: {exc}") from exc
    root_key = str(info.get("root_key", ""))
    if not re.fullmatch(r"[0-9a-fA-F]{64}", root_key):
        raise SandboxUnreachable(f"{info_url} returned no valid root_key")
    ca_pem = str(info.get("ca_pem", ""))
    if "BEGIN CERTIFICATE" not in ca_pem:
        raise SandboxUnreachable(f"{info_url} returned no CA certificate")
    folder = data_dir / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "ca.pem"
    ca_file.write_text(ca_pem)
    return SandboxConfig(
        proxy=str(info.get("proxy") or url), ca_file=str(ca_file), root_key=root_key
    )
