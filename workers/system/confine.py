"""Least privilege for a worker: its own uid, private files (umask 077) and, where the
kernel has Landlock, file-system reads and writes confined to what a worker needs.

A worker runs a large third-party stack (neonize's Go library, whatsmeow, protobuf
parsing of whatever WhatsApp peers send). If any of that is ever exploited, the damage
should stop at one session's folder: it must neither read nor rewrite the gateway's
registry, other sessions' keys, the gateway's memory or environment, or the code.

* :func:`drop_privileges` (a gateway running as root): the session's own uid and gid,
  the workers' group (for the gateway's sockets) and no capability, before anything
  else is opened, so file permissions hold even where Landlock does not exist.
* :func:`restrict` (Landlock): writes beneath the session folder only; reads beneath
  it, the Python installation and packages, system libraries and a short list of files
  in /etc (TLS roots, name resolution, time zone), /proc/self and the sandbox CA.
  Landlock also keeps the worker from ptrace or /proc reads of any process outside its
  own domain (the gateway, the zygote, other workers) and, from ABI 6, from signalling
  them or reaching their abstract UNIX sockets. The network is not touched.

Landlock is used through raw syscalls (ctypes), so there is no dependency; when the
kernel lacks it (or a seccomp filter hides it) the worker logs why and carries on with
the rest. Must run before neonize loads its Go library, whose threads inherit the
restriction only if it is in place before they start.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import mimetypes
import os
import platform
import resource
import stat
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from gowa_py import protocol as p
from gowa_py.errors import GowaError

log = logging.getLogger("gowa.worker.confine")

# x86_64 and aarch64 share the generic syscall numbers for Landlock.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
SYS_CAPSET = 126 if platform.machine() == "x86_64" else 91
CAPABILITY_VERSION_3 = 0x20080522

# File-system access rights (linux/landlock.h); the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE = 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK = 1 << 6, 1 << 7, 1 << 8, 1 << 9
MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 10, 1 << 11, 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
WRITES_V1 = (
    WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG | MAKE_SOCK
    | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
)  # fmt: skip
READS = EXECUTE | READ_FILE | READ_DIR
#: Rights a rule on a file (not a directory) may carry.
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE
# Scopes (ABI 6): abstract UNIX sockets and signals of processes outside the domain.
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
# Device files a process may legitimately open for writing.
WRITABLE_DEVICES = ("/dev/null", "/dev/tty")
#: What a worker reads outside Python and its session folder: shared libraries, TLS
#: roots, name resolution (glibc and Go), time zones, the limits Go reads at start, and
#: random devices. Missing entries are skipped.
SYSTEM_READABLE = (
    "/usr", "/lib", "/lib64", "/lib32", "/bin",
    "/etc/ssl", "/etc/ca-certificates", "/etc/pki", "/etc/ld.so.cache",
    "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
    "/etc/services", "/etc/protocols", "/etc/localtime",
    "/sys/fs/cgroup", "/sys/kernel/mm/transparent_hugepage", "/sys/devices/system/cpu",
    "/dev/urandom", "/dev/random", "/dev/zero",
)  # fmt: skip


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class Unsupported(GowaError):
    """Landlock cannot be used here; the message says why."""


def _syscall(libc: ctypes.CDLL, number: int, *args: object) -> int:
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return int(result)


def _prctl(libc: ctypes.CDLL, option: int, value: int, name: str) -> None:
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


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
        reason = {38: "not in this kernel", 95: "disabled at boot (lsm=)"}.get(exc.errno or 0, "")
        raise Unsupported(f"Landlock unavailable: {exc.strerror} {reason}".strip()) from exc


class Ruleset:
    """A Landlock ruleset, built while every allowed path can still be opened (before
    the worker gives up root) and enforced with :meth:`enforce` afterwards."""

    def __init__(self, writable: Iterable[Path], readable: Iterable[Path]) -> None:
        """Writes only beneath ``writable`` (plus /dev/null); reads only beneath
        ``writable`` and ``readable``."""
        self._libc = libc = ctypes.CDLL(None, use_errno=True)
        self.abi = abi = abi_version(libc)
        writes = WRITES_V1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
        handled = writes | READS
        scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
        attr = _RulesetAttr(handled, 0, scoped)
        self._fd = _syscall(
            libc, SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
            ctypes.c_uint32(0),
        )  # fmt: skip
        try:
            rules = [(Path(path), handled) for path in writable]
            rules += [(Path(path), READS) for path in readable]
            rules += [(Path(dev), READ_FILE | WRITE_FILE | TRUNCATE) for dev in WRITABLE_DEVICES]
            for path, rights in rules:
                self._add(path, rights & handled)
        except BaseException:
            os.close(self._fd)
            raise

    def _add(self, path: Path, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_RIGHTS
            rule = _PathBeneathAttr(rights, fd)
            _syscall(
                self._libc, SYS_ADD_RULE, ctypes.c_int(self._fd), ctypes.c_int(RULE_PATH_BENEATH),
                ctypes.byref(rule), ctypes.c_uint32(0),
            )  # fmt: skip
        finally:
            os.close(fd)

    def enforce(self) -> None:
        """Restrict this process (and every thread and child it starts from now on)."""
        try:
            _prctl(self._libc, PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
            _syscall(self._libc, SYS_RESTRICT_SELF, ctypes.c_int(self._fd), ctypes.c_uint32(0))
        finally:
            os.close(self._fd)


@functools.cache
def python_paths() -> list[Path]:
    """Where this interpreter reads code from: the standard library and site-packages,
    and the top-level package of every module loaded from anywhere else (a source
    checkout on ``PYTHONPATH``: its packages, not the whole folder, which may hold the
    data dir or a config file with the gateway's credentials). Computed once, in the
    zygote (its preload imports everything), for all the workers it forks."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {os.path.join(sysconfig.get_path(name), "") for name in names}
    entries = sorted({os.path.join(e, "") for e in sys.path if os.path.isabs(e)}, key=len)
    found = {root.rstrip(os.sep) for root in roots}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not isinstance(file, str) or any(file.startswith(root) for root in roots):
            continue
        for entry in reversed(entries):  # the longest (innermost) entry first
            if file.startswith(entry):
                found.add(entry + file[len(entry) :].split(os.sep, 1)[0])
                break
        else:
            # Found by a meta-path finder, not through sys.path (an editable install's):
            # the folders of its top-level package, where later imports look.
            found.update(_package_folders(sys.modules.get(name.partition(".")[0]), file))
    return sorted(Path(path) for path in found)


def _package_folders(top: object, file: str) -> list[str]:
    """The folders of package ``top``, or ``file`` alone for a top-level module."""
    folders = getattr(top, "__path__", None)
    if folders is None:
        return [file]
    return [str(folder) for folder in folders]


def readable_paths(config: p.WorkerConfig) -> list[Path]:
    """Everything a worker reads outside its session folder (see the module docstring)."""
    paths = [Path(path) for path in SYSTEM_READABLE]
    # The MIME tables Python's mimetypes reads (it opens each one that exists).
    paths += [Path(path) for path in mimetypes.knownfiles]
    paths += python_paths()
    # This process's own /proc/<pid> (what /proc/self resolves to now), threads included.
    paths.append(Path(os.path.realpath("/proc/self")))
    if config.sandbox is not None:
        paths.append(Path(config.sandbox.ca_file).parent)
    return paths


def drop_privileges(run_as: p.RunAs) -> None:
    """Become ``run_as`` for good: no way back to root, and no capability left."""
    os.setgroups(run_as.groups)
    os.setresgid(run_as.gid, run_as.gid, run_as.gid)
    os.setresuid(run_as.uid, run_as.uid, run_as.uid)
    if os.getresuid() != (run_as.uid,) * 3 or os.getresgid() != (run_as.gid,) * 3:
        raise RuntimeError(f"could not switch to uid {run_as.uid}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """For a worker left as root (no uid to switch to): keep the uid, lose every
    capability, so file permissions, ptrace rules and other processes' limits hold."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except OSError:
        last = 40
    # The bounding set (what an exec could grant back) needs CAP_SETPCAP to shrink, which
    # a container may lack; no_new_privs (set with Landlock) blocks such grants anyway.
    with contextlib.suppress(OSError):
        for cap in range(last + 1):
            _prctl(libc, PR_CAPBSET_DROP, cap, "PR_CAPBSET_DROP")
    data = (_CapData * 2)()
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    _syscall(libc, SYS_CAPSET, ctypes.byref(header), data)


def limit_memory(limit: int) -> None:
    """A ceiling on the worker's private writable memory (``RLIMIT_DATA``: heap, anonymous
    mappings, thread stacks; not the address space Go only reserves, 2 GB of a worker's
    2.2 GB, nor shared pages). Past it, an allocation fails: Go's runtime dies with "out of
    memory", Python raises MemoryError and the worker restarts itself; either way the
    supervisor starts a fresh worker and the session carries on. Hard as well as soft:
    the worker cannot raise it again."""
    if limit > 0:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def confine(config: p.WorkerConfig) -> bool:
    """Everything above, in order; returns whether Landlock is in force.

    Also makes the worker's new files private and its session's ``tmp/`` the temp dir.
    """
    session_dir = Path(config.session_dir)
    ruleset: Ruleset | None = None
    try:
        ruleset = Ruleset([session_dir], readable_paths(config))
    except Unsupported as exc:
        log.warning("file-system confinement skipped: %s", exc)
    except OSError as exc:
        log.warning("file-system confinement failed, running unconfined: %s", exc)
    limit_memory(config.memory_limit_bytes)
    if config.run_as is not None:
        drop_privileges(config.run_as)
        log.info("running as uid %d", config.run_as.uid)
    elif os.geteuid() == 0:
        drop_capabilities()
        log.warning("running as root without capabilities (no worker uid was assigned)")
    # Out of reach of other processes' ptrace and /proc reads; only where the gateway is
    # root, which reads workers' memory figures in /proc whatever the flag.
    if config.run_as is not None or os.geteuid() == 0:
        _prctl(ctypes.CDLL(None, use_errno=True), PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")
    os.umask(0o077)
    tmp = session_dir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    # C code (SQLite temp files, ...) reads these with getenv(); Python's tempfile too.
    os.environ["TMPDIR"] = os.environ["SQLITE_TMPDIR"] = str(tmp)
    if ruleset is None:
        return False
    try:
        ruleset.enforce()
    except OSError as exc:
        log.warning("file-system confinement failed, running unconfined: %s", exc)
        return False
    log.info(
        "file-system reads and writes confined to %s (Landlock ABI %d)", session_dir, ruleset.abi
    )
    return True
