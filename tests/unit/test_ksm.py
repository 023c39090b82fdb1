"""Starting ksmd and reading its counters, against a stand-in for /sys/kernel/mm/ksm."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gowa_py.supervisor import ksm
from tests.procs import ROOT


def _sysfs(tmp_path: Path, **values: int) -> Path:
    root = tmp_path / "ksm"
    root.mkdir()
    for name, value in {"run": 0, "pages_to_scan": 100, **values}.items():
        (root / name).write_text(f"{value}\n")
    return root


def test_off_touches_nothing(tmp_path):
    root = _sysfs(tmp_path)
    assert ksm.ensure_running("off", 1000, root).state == "off"
    assert (root / "run").read_text() == "0\n"


def test_a_kernel_without_ksm(tmp_path):
    status = ksm.ensure_running("auto", 1000, tmp_path / "missing")
    assert status.state == "unavailable"
    assert ksm.counters(tmp_path / "missing") == {}


def test_a_stopped_ksmd_is_started_with_our_scan_rate(tmp_path):
    root = _sysfs(tmp_path)
    assert not ksm.running(root)
    assert ksm.ensure_running("auto", 1000, root).state == "started"
    assert ksm.running(root)
    assert (root / "run").read_text() == "1"
    assert (root / "pages_to_scan").read_text() == "1000"


def test_a_running_ksmd_keeps_the_hosts_tuning(tmp_path):
    root = _sysfs(tmp_path, run=1, pages_to_scan=64)
    assert ksm.ensure_running("auto", 1000, root).state == "running"
    assert (root / "pages_to_scan").read_text() == "64\n"


def test_no_permission_to_start_says_how(tmp_path):
    root = _sysfs(tmp_path)
    (root / "pages_to_scan").unlink()
    (root / "pages_to_scan").mkdir()  # unwritable, even for root
    status = ksm.ensure_running("auto", 1000, root)
    assert status.state == "stopped"
    assert "echo 1 >" in status.detail
    assert (root / "run").read_text() == "0\n"


def test_counters(tmp_path):
    root = _sysfs(tmp_path, pages_shared=3, pages_sharing=12, full_scans=7)
    assert ksm.counters(root) == {"pages_shared": 3, "pages_sharing": 12, "full_scans": 7}


@pytest.mark.skipif(not os.path.exists("/proc/self/ksm_stat"), reason="no per-process KSM")
@pytest.mark.parametrize("wanted", ["1", None])
def test_a_worker_opts_in_only_when_asked(wanted):
    env = {k: v for k, v in os.environ.items() if k != "GOWA_WORKER_KSM"}
    if wanted:
        env["GOWA_WORKER_KSM"] = wanted
    code = """
        from workers.system import pagemerge
        print(pagemerge.opt_in(), "ksm_merge_any: yes" in open("/proc/self/ksm_stat").read())
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    expected = "True True" if wanted else "False False"
    assert result.stdout.split() == expected.split()
