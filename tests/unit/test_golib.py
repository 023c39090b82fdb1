"""workers.golib: the preload imports everything a worker imports, except neonize's Go library.

Each check runs in a fresh interpreter: the preload rewires ``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.procs import ROOT


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_preload_imports_the_worker_but_not_the_go_library():
    out = _run(
        """
        import sys, threading
        from workers import golib
        modules = golib.preload()
        assert "neonize.client" in modules and "workers.session" in modules
        assert not golib.go_library_loaded()
        assert threading.active_count() == 1
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_a_forked_child_loads_the_library_and_uses_neonize():
    out = _run(
        """
        import os, sys, tempfile
        from workers import golib
        golib.preload()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                golib.load_go_library()
                assert golib.go_library_loaded()
                import neonize, neonize.client
                from neonize._binder import gocode
                assert neonize.client.gocode is gocode
                assert gocode.GetVersion  # a real ctypes function now
                client = neonize.client.NewClient(
                    os.path.join(tempfile.mkdtemp(), "w.db"), uuid="t"
                )
                assert client.uuid
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert out.strip() == "0"


def test_preload_leaves_logging_to_the_worker():
    out = _run(
        """
        import logging
        from workers import golib
        golib.preload()
        print(len(logging.getLogger().handlers))
        """
    )
    assert out.strip() == "0"
