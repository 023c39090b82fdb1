"""Which webhook targets the gateway may call (SSRF protection for multi-tenant users).

By default a webhook may not point at loopback, private, link-local, multicast or other
reserved addresses: a tenant could otherwise make the gateway probe its own network.
``webhook_allow_networks`` re-opens chosen networks (e.g. ``10.0.0.0/8`` for an internal
receiver); ``webhook_deny_networks`` closes more. The check runs on the resolved
addresses at connect time, so DNS tricks do not bypass it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from gowa_py.errors import GowaError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA's special-purpose registries (not globally reachable, or not a unicast host).
# Python's ``is_global`` misses several of these in the versions we support (192.0.0.0/24,
# fec0::/10, 64:ff9b:1::/48 and 3fff::/20 count as global on 3.11), so they are listed.
_SPECIAL = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one.

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``), the deprecated
    IPv4-compatible (``::a.b.c.d``), NAT64's well-known prefix (``64:ff9b::/96``) and 6to4
    (``2002::/16``) all end up at an IPv4 host (through the kernel, a NAT64 gateway or a
    6to4 relay), so that host is what the policy must judge: ``::127.0.0.1`` and
    ``64:ff9b::7f00:1`` reach loopback while looking like global IPv6 addresses.
    """
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if value >> 32 == 0xFFFF0000 or (value >> 32 == 0 and value > 1) or ip in _NAT64:
        return low32
    return ip.sixtofour


class BlockedTarget(GowaError):
    """A target the SSRF policy refuses; the message says which address and why."""


class Unresolvable(BlockedTarget):
    """The name has no address now; unlike a refusal, that may change."""


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
    def __init__(
        self,
        allow: list[Network],
        deny: list[Network],
        allow_setting: str = "webhook_allow_networks",
        deny_setting: str = "webhook_deny_networks",
    ) -> None:
        """The setting names only shape the messages, so an operator knows what to change."""
        self._allow = allow
        self._deny = deny
        self._allow_setting = allow_setting
        self._deny_setting = deny_setting

    def reason(self, address: str) -> str | None:
        """Why ``address`` may not be called, or None when it may.

        An IPv6 address that carries an IPv4 one is judged by that IPv4 address; the lists
        match either form, so an operator can allow ``127.0.0.0/8`` or deny ``2002::/16``.
        """
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        inner = embedded_ipv4(ip)
        forms = [ip] if inner is None else [ip, inner]
        target = forms[-1]
        if any(f in network for f in forms for network in self._deny):
            return f"{target} is in {self._deny_setting}"
        if any(f in network for f in forms for network in self._allow):
            return None
        if not target.is_global or any(target in network for network in _SPECIAL):
            shown = f"{ip} (that is {inner})" if inner is not None else str(ip)
            return (
                f"{shown} is a loopback, private or reserved address; allow it with "
                f"{self._allow_setting}"
            )
        return None

    async def check_host(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and refuse it unless every address it has may be called;
        returns the addresses.

        For a target another process dials (a worker's proxy): that process picks any of
        the addresses, so all of them must pass, not just one.
        """
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host.strip("[]"), port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise Unresolvable(f"{host} does not resolve") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        refused = sorted({r for r in map(self.reason, addresses) if r})
        if refused:
            raise BlockedTarget(f"{host}: " + "; ".join(refused))
        return addresses

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
