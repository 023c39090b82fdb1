"""Hooks that point an unmodified neonize client at the sandbox network (a worker in
sandbox mode, the sandbox's own contact agents); production never calls these.
Order matters:

1. :func:`trust_ca` before neonize loads its Go library (i.e. before ``import neonize``),
   or at least before the first ``connect()``: Go reads ``SSL_CERT_FILE`` once, when it
   first needs the system roots.
2. :func:`patch_root_key` after ``neonize._binder`` has loaded the library and before the
   first ``connect()``: it overwrites whatsmeow's ``WACertPubKey`` (the root of the Noise
   server-certificate chain) in this process's memory with the sandbox's root key.

Only the standard library is imported, so this module is cheap to import in a worker.
"""

from __future__ import annotations

import ctypes
import os

from gowa_py.errors import GowaError

#: whatsmeow's ``WACertPubKey`` (handshake.go), as shipped in neonize builds.
WA_CERT_PUB_KEY = bytes.fromhex("142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b")
LIBRARY_PREFIX = "neonize-"


class SandboxPatchError(GowaError, RuntimeError):
    """The running neonize build cannot be redirected to the sandbox."""


def trust_ca(ca_pem_path: str) -> None:
    """Make Go's TLS stack trust the sandbox CA (sets ``SSL_CERT_FILE``).

    Must run before the first connection of any neonize client in this process.
    """
    if not os.path.isfile(ca_pem_path):
        raise FileNotFoundError(f"sandbox CA not found: {ca_pem_path}")
    os.environ["SSL_CERT_FILE"] = os.path.abspath(ca_pem_path)


def _writable_mappings() -> list[tuple[int, int, str]]:
    """(start, end, path) of the neonize library's writable mappings in this process.

    Go's ``.noptrdata`` lives in the RW PT_LOAD segment; its file-backed part maps with
    the library path, the rest (``.bss`` tail) anonymously right after it.
    """
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) < 6 or "w" not in fields[1]:
                continue
            path = fields[5].strip()
            if os.path.basename(path).startswith(LIBRARY_PREFIX) and path.endswith(".so"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end, path))
    return regions


def _find_all(needle: bytes) -> tuple[list[int], str]:
    regions = _writable_mappings()
    if not regions:
        raise SandboxPatchError(
            "the neonize library is not loaded: import neonize before patch_root_key()"
        )
    hits = []
    for start, end, _path in regions:
        data = ctypes.string_at(start, end - start)
        pos = data.find(needle)
        while pos != -1:
            hits.append(start + pos)
            pos = data.find(needle, pos + 1)
    return hits, os.path.basename(regions[0][2])


def patch_root_key(root_key: bytes) -> None:
    """Replace whatsmeow's ``WACertPubKey`` with the sandbox root key, in memory.

    The key is located by its original bytes inside the library's writable mappings
    (never by a fixed offset) and must occur exactly once. Calling it again with the
    same key is a no-op.
    """
    if len(root_key) != 32:
        raise ValueError("the sandbox root key must be 32 bytes")
    original, library = _find_all(WA_CERT_PUB_KEY)
    if len(original) == 1:
        ctypes.memmove(original[0], root_key, 32)
        return
    if not original and len(_find_all(root_key)[0]) == 1:
        return
    raise SandboxPatchError(
        f"WACertPubKey found {len(original)} times in {library} (expected once): "
        "this neonize build is not supported by the sandbox"
    )
