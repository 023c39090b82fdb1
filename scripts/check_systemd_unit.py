"""Check config/systemd/gowa@.service where systemd itself does not run (a container).

1. ``systemd-analyze verify`` on the unit, its ExecStart pointed at this installation:
   any warning (an unknown key, a bad value, a missing program) fails the check.
2. Tests with real workers (by default the confinement tests, which pair sessions whose
   workers switch to their own uids, and the cluster routes) run under what the unit
   leaves the gateway: its capability bounding set and no_new_privs (``setpriv``), in a
   mount namespace of their own where ``/`` and ``/sys`` are read-only, ``/tmp`` is
   fresh and ``/root`` and ``/home`` are hidden (ProtectSystem=strict, ProtectKernel-
   Tunables, PrivateTmp, ProtectHome). A Python installed under ``/root`` or ``/home``
   is mounted back read-only, standing in for one installed elsewhere.

Needs root (mounts, capabilities) and ``systemd-analyze``, ``unshare``, ``setpriv``.
Run from the repository: ``python scripts/check_systemd_unit.py [pytest args]``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "config" / "systemd" / "gowa@.service"
DEFAULT_TESTS = ["tests/e2e/test_confine.py", "tests/e2e/test_cluster_routes.py"]


def verify() -> None:
    gowa = Path(sys.executable).parent / "gowa"
    text = UNIT.read_text().replace("/opt/gowa/.venv/bin/gowa", str(gowa))
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "gowa@check.service"
        copy.write_text(text)
        done = subprocess.run(
            ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True
        )
    found = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or found:
        sys.exit(f"systemd-analyze verify: exit {done.returncode}\n{found}")
    print("systemd-analyze verify: no warning")


def bounding_set() -> str:
    """The unit's CapabilityBoundingSet as setpriv's ``--bounding-set`` argument."""
    line = re.search(r"^CapabilityBoundingSet=(.+)$", UNIT.read_text(), re.MULTILINE)
    if line is None:
        sys.exit(f"{UNIT} sets no CapabilityBoundingSet")
    names = [name.removeprefix("CAP_").lower() for name in line.group(1).split()]
    return ",".join(["-all", *(f"+{name}" for name in names)])


def hidden_python() -> list[str]:
    """The mounts that hide /root and /home but keep this Python readable."""
    prefix = Path(sys.base_prefix).resolve()
    commands = []
    for home in ("/root", "/home"):
        if not Path(home).is_dir():
            continue
        keep = prefix.is_relative_to(home)
        if keep:
            commands.append(f"mkdir -p /tmp/.python && mount -n --bind {prefix} /tmp/.python")
        commands.append(f"mount -n -t tmpfs -o mode=0755 tmpfs {home}")
        if keep:
            commands += [
                f"mkdir -p {prefix} && mount -n --move /tmp/.python {prefix}",
                f"mount -n -o remount,bind,ro {prefix}",
            ]
    return commands


def run_tests(args: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", *(args or DEFAULT_TESTS)]
    pytest += ["-q", "-p", "no:cacheprovider", "-n", "0"]
    script = [
        "set -e",
        "mount -n --make-rprivate /",
        "mount -n --bind / / && mount -n -o remount,bind,ro / /",
        "mount -n -t tmpfs -o mode=1777 tmpfs /tmp",
        *hidden_python(),
        "mount -n -o remount,bind,ro /sys",
        f"if touch {shlex.quote(str(ROOT))}/.rw-check 2>/dev/null; then "
        "echo '/ is still writable' >&2; exit 1; fi",
        f"cd {shlex.quote(str(ROOT))}",
        "exec setpriv --no-new-privs --bounding-set="
        + bounding_set()
        + " env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="
        + shlex.quote(str(ROOT))
        + " "
        + shlex.join(pytest),
    ]
    return subprocess.run(["unshare", "-m", "sh", "-c", "\n".join(script)]).returncode


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("run as root: the check mounts and sets capabilities")
    verify()
    code = run_tests(sys.argv[1:])
    print("tests under the unit's confinement:", "passed" if code == 0 else f"exit {code}")
    sys.exit(code)


if __name__ == "__main__":
    main()
