import pytest

from gowa_py.backoff import CrashWindow, backoff_delay


def test_backoff_doubles_and_caps():
    assert [backoff_delay(n, base=1, cap=10) for n in range(6)] == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_stays_in_range():
    for _ in range(200):
        assert 0.9 * 4 <= backoff_delay(2, base=1, cap=60, jitter=0.1) <= 1.1 * 4


def test_backoff_rejects_negative_attempt():
    with pytest.raises(ValueError):
        backoff_delay(-1)


def test_huge_attempt_does_not_overflow():
    assert backoff_delay(10_000, cap=60) == 60


def test_crash_window_fails_at_limit_inside_window():
    window = CrashWindow(limit=5, window_s=300)
    assert [window.record(now=t) for t in (0, 10, 20, 30)] == [False] * 4
    assert window.record(now=40) is True


def test_crash_window_forgets_old_crashes():
    window = CrashWindow(limit=3, window_s=60)
    window.record(now=0)
    window.record(now=10)
    assert window.record(now=100) is False
    assert window.recent == 1
