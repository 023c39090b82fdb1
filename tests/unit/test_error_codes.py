"""Error codes are one enum: every code has its status and meaning, and ``/openapi.json``
documents each one under that status."""

from __future__ import annotations

import pathlib
import re

from gowa_py import protocol as p

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_code_has_an_error_status_and_a_meaning():
    for code in p.ErrorCode:
        assert code.value == code.name
        assert 400 <= code.status < 600, code
        assert code.meaning and "\n" not in code.meaning, code


def test_bare_http_statuses_get_their_own_code():
    assert p.ErrorCode.for_status(404) is p.ErrorCode.NOT_FOUND
    assert p.ErrorCode.for_status(405) is p.ErrorCode.METHOD_NOT_ALLOWED
    assert p.ErrorCode.for_status(431) is p.ErrorCode.HTTP_ERROR


async def test_openapi_lists_every_code_under_its_status(make_client):
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    table = document["components"]["responses"]
    for code in p.ErrorCode:
        description = table[f"Error{code.status}"]["description"]
        assert f"`{code.value}`: {code.meaning}" in description, code
    operation = document["paths"]["/api/sessions"]["post"]
    assert operation["responses"]["409"] == {"$ref": "#/components/responses/Error409"}


def test_product_code_writes_no_error_code_as_a_string():
    """A code typed out as a literal escapes the enum (and the OpenAPI table)."""
    names = "|".join(code.value for code in p.ErrorCode)
    literal = re.compile(rf"""["']({names})["']""")
    offenders = []
    for folder in ("gowa_py", "workers"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "protocol.py" or "sim" in path.relative_to(ROOT).parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if literal.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_failure_with_a_code_shares_one_base():
    from gowa_py.config import ConfigError
    from gowa_py.errors import GowaError
    from gowa_py.gateway.errors import ApiError
    from gowa_py.gateway.sandbox import SandboxUnreachable
    from gowa_py.ids import InvalidSessionId
    from gowa_py.ipc import WorkerError, WorkerUnavailable
    from gowa_py.keyhash import VerifierBusy
    from gowa_py.serve import DataDirBusy
    from gowa_py.sim.redirect import SandboxPatchError
    from gowa_py.storage.migrations import SchemaTooNew
    from gowa_py.supervisor import (
        PairingLimit,
        SessionBusy,
        SessionExists,
        SessionLimit,
        SessionMissing,
    )
    from gowa_py.supervisor.runner import StartRefused
    from gowa_py.supervisor.zygote_client import ZygoteError
    from gowa_py.webhooks.policy import BlockedTarget
    from workers.errors import SessionError
    from workers.system.confine import Unsupported
    from workers.worker import StoreDamaged

    for cls in (
        ApiError,
        ConfigError,
        InvalidSessionId,
        WorkerError,
        WorkerUnavailable,
        SchemaTooNew,
        PairingLimit,
        SessionBusy,
        SessionExists,
        SessionLimit,
        SessionMissing,
        SessionError,
        StoreDamaged,
        SandboxUnreachable,
        VerifierBusy,
        DataDirBusy,
        ZygoteError,
        StartRefused,
        BlockedTarget,
        SandboxPatchError,
        Unsupported,
    ):
        assert issubclass(cls, GowaError), cls
    busy = SessionBusy("s1", 2.5)
    assert (busy.code, busy.status, busy.headers) == ("SESSION_BUSY", 503, {"Retry-After": "1"})
    assert "waited 2.5 s" in busy.message
    assert WorkerError(p.ErrorCode.NOT_FOUND, "gone").status == 404


async def _answer_of(exc: Exception) -> tuple[int, dict, dict]:
    """What the gateway's error middleware answers for a handler raising ``exc``."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from gowa_py.gateway.errors import error_middleware

    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        return response.status, await response.json(), dict(response.headers)


async def test_the_middleware_answers_any_coded_failure_from_its_code():
    from gowa_py.errors import GowaError

    class Throttled(GowaError):
        code = p.ErrorCode.TOO_MANY_REQUESTS

    status, body, headers = await _answer_of(Throttled("slow down", headers={"Retry-After": "7"}))
    assert (status, body) == (
        429,
        {"code": "TOO_MANY_REQUESTS", "message": "slow down", "results": None},
    )
    assert headers["Retry-After"] == "7"


async def test_a_failure_without_a_code_is_an_internal_error_with_a_reference():
    from gowa_py.storage.migrations import SchemaTooNew

    status, body, _ = await _answer_of(SchemaTooNew("chats.db is from a newer release"))
    assert (status, body["code"]) == (500, "INTERNAL_ERROR")
    assert "ref " in body["message"] and "newer release" not in body["message"]
