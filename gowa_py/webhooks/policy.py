"""Which webhook targets the gateway may call (SSRF protection for multi-tenant users).

By default a webhook may not point at loopback, private, link-local, multicast or other
reserved addresses: a tenant could otherwise make the gateway probe its own network.
``webhook_allow_networks`` re-opens chosen networks (e.g. ``10.0.0.0/8`` for an internal
receiver); ``webhook_deny_networks`` closes more. The check runs on the resolved
addresses at connect time, so DNS tricks do not bypass it.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedTarget(Exception):
    pass


def parse_networks(value: str | None) -> list[Network]:
    """``"127.0.0.0/8, ::1"`` as networks; raises ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in (value or "").split(","):
        item = item.strip()
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(f"invalid network {item!r}: {exc}") from exc
    return networks


class TargetPolicy:
    def __init__(self, allow: list[Network], deny: list[Network]) -> None:
        self._allow = allow
        self._deny = deny

    def reason(self, address: str) -> str | None:
        """Why ``address`` may not be called, or None when it may."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self._deny):
            return f"{ip} is in webhook_deny_networks"
        if any(ip in network for network in self._allow):
            return None
        if not ip.is_global or ip.is_multicast:
            return (
                f"{ip} is a loopback, private or reserved address; allow it with "
                "webhook_allow_networks"
            )
        return None

    def check_literal(self, host: str) -> None:
        """aiohttp skips the resolver for IP literals, so those are checked here."""
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        reason = self.reason(host.strip("[]"))
        if reason:
            raise BlockedTarget(reason)


class PolicyResolver(AbstractResolver):
    """DNS resolution that drops every address the policy refuses."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._policy.reason(r["host"]) is None]
        if not allowed:
            reasons = {self._policy.reason(r["host"]) for r in results}
            raise BlockedTarget(f"{host}: " + "; ".join(sorted(r for r in reasons if r)))
        return allowed

    async def close(self) -> None:
        await self._inner.close()
