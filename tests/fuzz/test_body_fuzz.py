"""Generated request bodies against a real ``gowa serve``: multipart built from broken
pieces (missing or odd boundaries, nameless and non-UTF-8 part names, unknown charsets and
transfer encodings), forms and JSON under odd content types. Every answer must be a JSON
envelope and never a 5xx (503 only as the documented answer of a stopped session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.explore import DERANDOMIZE
from tests.procs import Gateway

pytestmark = pytest.mark.integration

SESSION = "fz"
PATHS = [f"/api/{SESSION}/send/image", f"/api/{SESSION}/send/message", "/api/sessions"]
CONTENT_TYPES = [
    "multipart/form-data; boundary=b",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    'multipart/form-data; boundary="b"; charset=no-such',
    "multipart/mixed; boundary=b",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=no-such",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/json",
    "application/json; charset=utf-16",
    "text/plain",
]
pieces = st.one_of(
    st.sampled_from(
        [
            b"--b\r\n",
            b"--b--\r\n",
            b"--c\r\n",
            b"\r\n",
            b"Content-Disposition: form-data\r\n",
            b'Content-Disposition: form-data; name="phone"\r\n',
            b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n',
            b'Content-Disposition: form-data; name="\xa7\xff"\r\n',
            b"Content-Disposition: attachment; filename*=UTF-8''%ff\r\n",
            b"Content-Type: text/plain; charset=no-such\r\n",
            b"Content-Type: text/plain; charset=utf-16\r\n",
            b"Content-Type: multipart/mixed; boundary=c\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Transfer-Encoding: quoted-printable\r\n",
            b"Content-Encoding: gzip\r\n",
            b"Content-Encoding: deflate\r\n",
            b"15550000001",
            b'{"phone": "15550000001", "message": "x"}',
            b"phone=%ff&message=x",
            b"\xff\xfe",
            b"[" * 2000,
        ]
    ),
    st.binary(max_size=12),
)
bodies = st.lists(pieces, max_size=12).map(b"".join)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("body-fuzz") / "data", env={"GOWA_RATE_LIMIT": "0"})
    try:
        gateway.start()
        status, body = gateway.http.post("/api/sessions", {"session_id": SESSION, "start": False})
        assert status == 201, body
        yield gateway
    finally:
        gateway.cleanup()


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=list(HealthCheck),
)
@given(path=st.sampled_from(PATHS), content_type=st.sampled_from(CONTENT_TYPES), raw=bodies)
def test_generated_bodies_get_a_4xx_envelope(gateway, path, content_type, raw):
    status, answer = gateway.http.call(
        "POST", path, raw=raw, headers={"Content-Type": content_type}, timeout=10
    )
    assert isinstance(answer, dict) and set(answer) == {"code", "message", "results"}, answer
    stopped = status == 503 and answer["code"] == "SESSION_UNAVAILABLE"
    assert status < 500 or stopped, (status, answer)


def test_the_gateway_logged_no_traceback(gateway):
    assert "Traceback" not in gateway.log_path.read_text()
