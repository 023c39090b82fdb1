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
