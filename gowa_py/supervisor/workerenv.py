"""The environment a worker process is exec'd with."""

from __future__ import annotations

import os

from gowa_py import protocol as p
from gowa_py.config import SECRET_ENV, Settings


def inherited_env() -> dict[str, str]:
    """The gateway's environment minus its secrets, as the base of a worker's (``gowa
    serve`` has dropped them already; an app created in-process may still hold them)."""
    return {name: value for name, value in os.environ.items() if name not in SECRET_ENV}


def runtime_env(settings: Settings | None, sandbox: p.SandboxConfig | None) -> dict[str, str]:
    """Environment the Go runtime in a worker must see, so it goes in at ``exec`` time.

    A Go c-shared library reads the environment block that follows ``argv`` (the one the
    process was exec'd with), not later ``putenv`` calls that add a variable; so these are
    set in the zygote's (or the plain worker's) exec environment. A GO* value already set
    in the gateway's environment wins.
    """
    settings = settings if settings is not None else Settings()
    values = {
        # One Go scheduler thread is plenty for one session and keeps idle workers smaller
        # than Go's default of one per core (docs/benchmarks.md, "Go runtime tuning").
        "GOMAXPROCS": "1",
    }
    if settings.worker_gogc:
        values["GOGC"] = str(settings.worker_gogc)
    if settings.worker_gomemlimit:
        values["GOMEMLIMIT"] = settings.worker_gomemlimit
    env = {name: value for name, value in values.items() if name not in os.environ}
    if settings.ksm != "off":
        env[p.KSM_ENV] = "1"
    if settings.worker_timer_slack_ms > 0:
        env[p.TIMER_SLACK_ENV] = str(round(settings.worker_timer_slack_ms * 1_000_000))
    if sandbox is not None:
        ca_file = os.path.abspath(sandbox.ca_file)
        env["SSL_CERT_FILE"] = ca_file
        # Without SSL_CERT_DIR, Go also parses every certificate in /etc/ssl/certs (~150)
        # in each worker, a large part of its start (docs/benchmarks.md, "Start-up"). A
        # sandbox worker reaches nothing but the sandbox, so the CA's own folder (it holds
        # only ca.pem, see gateway/sandbox.py) is the whole trust store.
        env["SSL_CERT_DIR"] = os.path.dirname(ca_file)
    return env
