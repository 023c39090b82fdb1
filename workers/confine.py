"""Least privilege for a worker: private files (umask 077) and, where the kernel has
Landlock, file-system writes confined to the session's own folder.

A worker runs a large third-party stack (neonize's Go library, whatsmeow, protobuf
parsing of whatever WhatsApp peers send). If any of that is ever exploited, the damage
should stop at one session's folder: it must not rewrite the gateway's registry, other
sessions' keys, the code, or anything else. Reads stay allowed (the Python install,
neonize's shared library, /etc/ssl, /proc/self, the sandbox CA), and the network is not
touched: only writes are restricted.

Landlock is used through raw syscalls (ctypes), so there is no dependency; when the
kernel lacks it (or a seccomp filter hides it) the worker logs why and carries on.
Must run before neonize loads its Go library, whose threads inherit the restriction only
if it is in place before they start.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger("gowa.worker.confine")

# x86_64 and aarch64 share the generic syscall numbers for Landlock.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# File-system access rights (linux/landlock.h); the ABI that introduced them.
WRITE_FILE = 1 << 1
REMOVE_DIR, REMOVE_FILE = 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK = 1 << 6, 1 << 7, 1 << 8, 1 << 9
MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 10, 1 << 11, 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
WRITES_V1 = (
    WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK
    | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
)  # fmt: skip
# Device files a process may legitimately open for writing.
WRITABLE_DEVICES = ("/dev/null", "/dev/tty")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class Unsupported(Exception):
    """Landlock cannot be used here; the message says why."""


def _syscall(libc: ctypes.CDLL, number: int, *args: object) -> int:
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(result)


def abi_version(libc: ctypes.CDLL | None = None) -> int:
    """The kernel's Landlock ABI version; raises :class:`Unsupported` with the reason."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        raise Unsupported(f"Landlock syscalls are not wired for {platform.machine()}")
    libc = libc or ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    try:
        return _syscall(
            libc,
            SYS_CREATE_RULESET,
            None,
            ctypes.c_size_t(0),
            ctypes.c_uint32(CREATE_RULESET_VERSION),
        )
    except OSError as exc:
        reason = {38: "not in this kernel", 95: "disabled at boot (lsm=)"}.get(exc.errno, "")
        raise Unsupported(f"Landlock unavailable: {exc.strerror} {reason}".strip()) from exc


def restrict_writes(writable: list[Path]) -> int:
    """Allow writes only beneath ``writable`` (plus /dev/null); returns the ABI used."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = abi_version(libc)
    handled = WRITES_V1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(handled)
    ruleset = _syscall(
        libc, SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
        ctypes.c_uint32(0),
    )  # fmt: skip
    try:
        rules = [(path, handled) for path in writable]
        device_rights = WRITE_FILE | (TRUNCATE if abi >= 3 else 0)
        rules += [(Path(dev), device_rights) for dev in WRITABLE_DEVICES if Path(dev).exists()]
        for path, rights in rules:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(rights, fd)
                _syscall(
                    libc, SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH),
                    ctypes.byref(rule), ctypes.c_uint32(0),
                )  # fmt: skip
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"PR_SET_NO_NEW_PRIVS: {os.strerror(errno)}")
        _syscall(libc, SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def confine(session_dir: Path) -> bool:
    """Make the calling worker's new files private and its writes stay in ``session_dir``
    (whose ``tmp/`` becomes the temp dir). Returns whether Landlock is in force."""
    os.umask(0o077)
    tmp = session_dir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    # C code (SQLite temp files, ...) reads these with getenv(); Python's tempfile too.
    os.environ["TMPDIR"] = os.environ["SQLITE_TMPDIR"] = str(tmp)
    try:
        abi = restrict_writes([session_dir])
    except Unsupported as exc:
        log.warning("file-system confinement skipped: %s", exc)
        return False
    except OSError as exc:
        log.warning("file-system confinement failed, running unconfined: %s", exc)
        return False
    log.info("file-system writes confined to %s (Landlock ABI %d)", session_dir, abi)
    return True
