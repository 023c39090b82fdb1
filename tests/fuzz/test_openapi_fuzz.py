"""Schemathesis against our own ``/openapi.json``: generated requests for every documented
operation (valid and invalid) must never get a 5xx from the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.fuzz.explore import DERANDOMIZE
from tests.procs import Gateway
from tests.sim.harness import SandboxProcess

pytestmark = pytest.mark.integration
# Per operation; small so the whole API is covered in well under a minute.
MAX_EXAMPLES = 4


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Sessions created by the fuzzer talk to a sandbox, never to WhatsApp."""
    sim = SandboxProcess(tmp_path_factory.mktemp("fuzz-sim"))
    sim.start()
    gateway = Gateway(
        tmp_path_factory.mktemp("fuzz") / "data",
        env={"GOWA_RATE_LIMIT": "0", "GOWA_COMMAND_TIMEOUT": "5"},
        args=["--sandbox", sim.url],
    )
    try:
        yield gateway.start()
    finally:
        gateway.cleanup()
        sim.stop()


def _load_schema(gateway: Gateway) -> schemathesis.BaseSchema:
    status, body = gateway.http.get("/openapi.json")
    assert status == 200, body
    return schemathesis.openapi.from_url(gateway.http.base + "/openapi.json")


def _restarting(response: Any) -> bool:
    """503 SESSION_UNAVAILABLE is the documented answer while a worker restarts, which
    the fuzzer itself causes (``/app/reconnect``, ``/app/logout``, session restarts)."""
    if response.status_code != 503:
        return False
    try:
        return response.json().get("code") == "SESSION_UNAVAILABLE"
    except ValueError:
        return False


def test_no_server_errors(fuzz_gateway: Gateway) -> None:
    """A few generated cases per operation (positive and negative), each checked by
    schemathesis' ``not_a_server_error``. Driven by hand rather than through
    ``schemathesis.pytest``, whose fixture loader does not run on pytest 9."""
    schema = _load_schema(fuzz_gateway)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzz_gateway.http.base, timeout=20)
            if _restarting(response):
                return
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every failing operation
            failures[operation.label] = str(exc)[:1500]
    assert operations > 10
    assert not failures, "\n\n".join(f"{label}: {error}" for label, error in failures.items())
