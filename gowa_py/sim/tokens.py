"""WABinary token dictionaries, recovered at run time from the installed neonize library.

whatsmeow tokenizes every string it can, so the sandbox needs the exact tables to
decode client stanzas. The tables are part of whatsmeow's MPL-2.0 ``token.go``; rather
than shipping a copy, we read them out of ``neonize-linux-amd64.so`` (the very build the
clients run, so the tables can never drift from the client's):

* ``SingleByteTokens`` is a Go ``[236]string``: an array of 16-byte string headers
  ``(ptr, len)`` in the writable data segment. Index 1 is ``"xmlstreamstart"``, so the
  array starts one header before the header that points at that string.
* ``DoubleByteTokens`` is a ``[][]string`` of four 256-entry slices whose first row starts
  with ``"read-self"``; the four slice headers ``(ptr, len, cap)`` are consecutive.

The file is parsed as ELF and never loaded, so no Go runtime starts in the sandbox.

WhatsApp also accepts the older dictionary v2 (header ``WA\x06\x02``), which Baileys and
the gateways built on it speak; its tables (other strings, other order) ship as
``tokens_v2.json``, taken from Baileys' MIT-licensed ``WABinary/constants``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

#: The dictionary version sent as the 4th byte of the connection header ("WA\x06\x03").
DICT_VERSION = 3
#: Every dictionary version a client may announce in its connection header.
DICT_VERSIONS = (2, 3)
SINGLE_BYTE_COUNT = 236
DOUBLE_BYTE_ROWS = 4
DOUBLE_BYTE_ROW_LEN = 256

_PT_LOAD = 1
_PF_W = 2


class TokenTableError(RuntimeError):
    """The token tables could not be located in the neonize library."""


@dataclass(frozen=True)
class TokenTables:
    single: tuple[str, ...]
    double: tuple[tuple[str, ...], ...]

    @functools.cached_property
    def single_index(self) -> dict[str, int]:
        return {tok: i for i, tok in enumerate(self.single) if tok}

    @functools.cached_property
    def double_index(self) -> dict[str, tuple[int, int]]:
        index: dict[str, tuple[int, int]] = {}
        for dic, row in enumerate(self.double):
            for i, tok in enumerate(row):
                index.setdefault(tok, (dic, i))
        return index


def neonize_library_path() -> Path:
    """Path of the neonize shared library, found without importing (loading) neonize."""
    spec = importlib.util.find_spec("neonize")
    if spec is None or not spec.submodule_search_locations:
        raise TokenTableError("neonize is not installed")
    for folder in spec.submodule_search_locations:
        candidates = sorted(Path(folder).glob("neonize-*.so"))
        if candidates:
            return candidates[0]
    raise TokenTableError("neonize shared library not found")


class _Elf:
    """Just enough ELF64 to translate virtual addresses of a non-loaded shared object."""

    def __init__(self, data: mmap.mmap) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise TokenTableError("not a little-endian ELF64 file")
        self.data = data
        (phoff,) = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        self.segments: list[tuple[int, int, int, int]] = []  # (flags, offset, vaddr, filesz)
        for i in range(phnum):
            p_type, flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
                "<IIQQQQ", data, phoff + i * phentsize
            )
            if p_type == _PT_LOAD:
                self.segments.append((flags, offset, vaddr, filesz))

    def va_to_offset(self, va: int) -> int:
        for _flags, offset, vaddr, filesz in self.segments:
            if vaddr <= va < vaddr + filesz:
                return offset + va - vaddr
        raise TokenTableError(f"address {va:#x} is not file-backed")

    def offset_to_va(self, off: int) -> int:
        for _flags, offset, vaddr, filesz in self.segments:
            if offset <= off < offset + filesz:
                return vaddr + off - offset
        raise TokenTableError(f"offset {off:#x} is not mapped")

    def writable_ranges(self) -> list[tuple[int, int]]:
        return [(o, o + n) for flags, o, _va, n in self.segments if flags & _PF_W]

    def find_all(self, needle: bytes, ranges: list[tuple[int, int]] | None = None) -> list[int]:
        hits = []
        for start, end in ranges or [(0, len(self.data))]:
            pos = self.data.find(needle, start, end)
            while pos != -1:
                hits.append(pos)
                pos = self.data.find(needle, pos + 1, end)
        return hits

    def go_string(self, header_off: int) -> str:
        ptr, length = struct.unpack_from("<QQ", self.data, header_off)
        if length == 0:
            return ""
        off = self.va_to_offset(ptr)
        return self.data[off : off + length].decode()

    def string_header_refs(self, text: bytes) -> list[int]:
        """File offsets of Go string headers (in writable segments) that point to ``text``."""
        refs = []
        for hit in self.find_all(text):
            try:
                va = self.offset_to_va(hit)
            except TokenTableError:
                continue
            refs += self.find_all(struct.pack("<QQ", va, len(text)), self.writable_ranges())
        return refs


def _read_single(elf: _Elf) -> tuple[str, ...]:
    tables = []
    for ref in elf.string_header_refs(b"xmlstreamstart"):
        start = ref - 16
        try:
            table = tuple(elf.go_string(start + 16 * i) for i in range(SINGLE_BYTE_COUNT))
        except (TokenTableError, UnicodeDecodeError):
            continue
        if table[0] == "" and table[3] == "s.whatsapp.net":
            tables.append(table)
    if len(set(tables)) != 1:
        raise TokenTableError(f"expected one single-byte token table, found {len(set(tables))}")
    return tables[0]


def _read_double(elf: _Elf) -> tuple[tuple[str, ...], ...]:
    found = []
    for ref in elf.string_header_refs(b"read-self"):
        row_va = elf.offset_to_va(ref)
        slice_hdr = struct.pack("<QQQ", row_va, DOUBLE_BYTE_ROW_LEN, DOUBLE_BYTE_ROW_LEN)
        for hdr_off in elf.find_all(slice_hdr, elf.writable_ranges()):
            rows = []
            for r in range(DOUBLE_BYTE_ROWS):
                ptr, length, _cap = struct.unpack_from("<QQQ", elf.data, hdr_off + 24 * r)
                if length != DOUBLE_BYTE_ROW_LEN:
                    break
                base = elf.va_to_offset(ptr)
                rows.append(tuple(elf.go_string(base + 16 * i) for i in range(length)))
            if len(rows) == DOUBLE_BYTE_ROWS:
                found.append(tuple(rows))
    if len(set(found)) != 1:
        raise TokenTableError(f"expected one double-byte token table, found {len(set(found))}")
    return found[0]


@functools.cache
def load_tokens(library: str | None = None) -> TokenTables:
    """Read (once per process) the token tables from the neonize library."""
    path = Path(library) if library else neonize_library_path()
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        elf = _Elf(data)
        return TokenTables(_read_single(elf), _read_double(elf))


@functools.cache
def tokens_for(version: int) -> TokenTables:
    """The token tables of dictionary ``version`` (one of :data:`DICT_VERSIONS`)."""
    if version == DICT_VERSION:
        return load_tokens()
    if version != 2:
        raise TokenTableError(f"unsupported dictionary version {version}")
    tables = json.loads((Path(__file__).with_name("tokens_v2.json")).read_text())
    return TokenTables(tuple(tables["single"]), tuple(tuple(row) for row in tables["double"]))
