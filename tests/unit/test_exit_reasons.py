"""Why a worker ended, as the supervisor finds it in its session folder."""

from pathlib import Path

from gowa_py import protocol as p
from gowa_py.supervisor import exitreason

GO_DEATH = """\
2026-12-04 12:55:48,404 INFO [m] gowa.worker.confine: file-system reads confined
fatal error: runtime: cannot allocate memory

runtime stack:
runtime.throw({0x7f2c44f2d02c?, 0x0?})
\t/usr/local/go/src/runtime/panic.go:1229 +0x4a
"""


def test_exit_reason_is_read_once(tmp_path: Path):
    (tmp_path / p.EXIT_REASON_FILE).write_text("chats.db cannot be opened\n")
    assert exitreason.take_exit_reason(tmp_path) == "chats.db cannot be opened\n".strip()
    assert exitreason.take_exit_reason(tmp_path) is None


def test_go_failure_is_found_only_in_the_current_workers_output(tmp_path: Path):
    log = tmp_path / "worker.log"
    assert exitreason.go_failure(tmp_path, (0, 0)) is None  # no log at all
    log.write_text("panic: an older worker's\n")
    start = exitreason.log_position(tmp_path)
    with log.open("a") as file:
        file.write("2026-12-04 INFO [m] gowa.worker: stopping\n")
    assert exitreason.go_failure(tmp_path, start) is None
    with log.open("a") as file:
        file.write(GO_DEATH)
    assert exitreason.go_failure(tmp_path, start) == "fatal error: runtime: cannot allocate memory"
    rotated = tmp_path / "worker.log.new"
    rotated.write_text("panic: send on closed channel\n\ngoroutine 7 [running]:\n" * 3)
    rotated.replace(log)  # a new file, longer than where the old one stood
    assert exitreason.go_failure(tmp_path, start) == "panic: send on closed channel"
