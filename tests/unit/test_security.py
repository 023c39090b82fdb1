"""Rate limits on WhatsApp action routes and API keys stored as hashes (no worker started)."""

from __future__ import annotations

import base64
import secrets

import pytest
from click.testing import CliRunner

from gowa_py.cli import main
from gowa_py.config import ConfigError, load_settings
from gowa_py.gateway.ratelimit import RateLimiter, limited_route
from gowa_py.gateway.throttle import FailureThrottle, client_address
from gowa_py.gateway.websessions import COOKIE_NAME
from gowa_py.keyhash import HashedKey, SlowKeyVerifier, VerifierBusy, hash_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_steady_rate():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per client
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    clock.now += 60
    assert [limiter.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never above burst


def test_bucket_memory_is_bounded():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock, max_clients=100)
    for n in range(1000):
        limiter.take(f"ip:{n}")
        clock.now += 0.001
    assert len(limiter._buckets) <= 100


@pytest.mark.parametrize(
    ("pattern", "limited"),
    [
        ("/send/message", True),
        ("/api/{session_id}/send/image", True),
        ("/message/{message_id}/read", True),
        ("/api/{session_id}/group/participants", True),
        ("/chat/{chat_jid}/pin", True),
        ("/api/sessions", False),
        ("/api/sessions/{session_id}/start", False),
        ("/api/dashboard/stats", False),
        ("/app/login", False),
        ("/api/{session_id}/app/login", False),
        ("/healthz", False),
        ("/", False),
    ],
)
def test_which_routes_are_limited(pattern, limited):
    assert limited_route(pattern) is limited


async def _send(client, headers):
    response = await client.post(
        "/api/nobody/send/message", json={"phone": "1", "message": "x"}, headers=headers
    )
    return response.status, await response.json(), response.headers


async def test_429_with_retry_after_per_api_key(make_client):
    client = await make_client(
        {"GOWA_API_KEY": "k1", "GOWA_RATE_LIMIT": "1", "GOWA_RATE_LIMIT_BURST": "3"}
    )
    statuses = [(await _send(client, {"X-Api-Key": "k1"}))[0] for _ in range(3)]
    assert statuses == [404, 404, 404]  # within the burst: the route itself answers
    status, body, headers = await _send(client, {"X-Api-Key": "k1"})
    assert (status, body["code"]) == (429, "TOO_MANY_REQUESTS")
    assert set(body) == {"code", "message", "results"}
    assert int(headers["Retry-After"]) >= 1
    # Failed authentication spends nothing and is still a 401.
    assert (await _send(client, {"X-Api-Key": "wrong"}))[0] == 401
    # Other routes are not limited.
    assert (await client.get("/api/sessions", headers={"X-Api-Key": "k1"})).status == 200
    # Each session has its own bucket (WhatsApp's limits are per number).
    response = await client.post(
        "/api/other/send/message",
        json={"phone": "1", "message": "x"},
        headers={"X-Api-Key": "k1"},
    )
    assert response.status == 404
    unprefixed = await client.post(
        "/send/message",
        json={"phone": "1", "message": "x"},
        headers={"X-Api-Key": "k1", "X-Device-Id": "nobody"},
    )
    assert unprefixed.status == 429


async def test_basic_auth_users_have_their_own_buckets(make_client):
    client = await make_client(
        {"GOWA_BASIC_AUTH": "a:1,b:2", "GOWA_RATE_LIMIT": "1", "GOWA_RATE_LIMIT_BURST": "1"}
    )

    def basic(user, password):
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    assert (await _send(client, basic("a", "1")))[0] == 404
    assert (await _send(client, basic("a", "1")))[0] == 429
    assert (await _send(client, basic("b", "2")))[0] == 404


async def test_rate_limit_zero_turns_it_off(make_client):
    client = await make_client({"GOWA_RATE_LIMIT": "0", "GOWA_RATE_LIMIT_BURST": "1"})
    assert {(await _send(client, {}))[0] for _ in range(5)} == {404}


def test_hashes_match_only_their_key():
    for stored in (hash_key("s3cret"), hash_key("s3cret", slow=True, iterations=1000)):
        hashed = HashedKey(stored)
        assert hashed.matches("s3cret")
        assert hashed.matches("s3cret")  # the remembered path of the slow hash
        assert not hashed.matches("s3cret ")
        assert not hashed.matches("")


@pytest.mark.parametrize(
    "bad",
    [
        "plain",
        "sha256:abc",
        "sha256:" + "zz" * 32,
        "pbkdf2_sha256$0$aa$" + "0" * 64,
        "md5$1$aa$" + "0" * 64,
    ],
)
def test_malformed_hash_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="api_key_hash"):
        load_settings({}, {"GOWA_API_KEY_HASH": bad})


async def test_hashed_key_authenticates_and_plain_key_still_works(make_client):
    client = await make_client(
        {
            "GOWA_API_KEY_HASH": hash_key("hashed-key", slow=True, iterations=1000),
            "GOWA_API_KEY": "plain-key",
        }
    )
    for key, status in (("hashed-key", 200), ("plain-key", 200), ("other", 401)):
        response = await client.get("/api/sessions", headers={"X-Api-Key": key})
        assert response.status == status, key
    response = await client.post("/api/dashboard/login", json={"api_key": "hashed-key"})
    assert response.status == 200


def test_cli_hash_key_prints_a_matching_hash():
    result = CliRunner().invoke(main, ["hash-key"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    key = lines[0].rsplit(" ", 1)[-1]
    stored = lines[-1].split('"')[1]
    assert HashedKey(stored).matches(key) and stored.startswith("sha256:")
    slow = CliRunner().invoke(main, ["hash-key", "--slow"], input="chosen\n")
    assert slow.exit_code == 0, slow.output
    assert HashedKey(slow.output.strip().split('"')[1]).matches("chosen")
    assert CliRunner().invoke(main, ["hash-key", "--slow"], input="\n").exit_code != 0


async def test_slow_hash_checks_are_bounded_shared_and_remembered():
    import asyncio

    verifier = SlowKeyVerifier(
        HashedKey(hash_key("right", slow=True, iterations=200_000)), threads=1, queue=1
    )
    try:
        # One runs, one waits; a third distinct key is refused at once, not queued.
        first = asyncio.ensure_future(verifier.matches("wrong-1"))
        second = asyncio.ensure_future(verifier.matches("wrong-2"))
        await asyncio.sleep(0)
        with pytest.raises(VerifierBusy):
            await verifier.matches("wrong-3")
        # The same key again shares the running check instead of taking a slot.
        again = asyncio.ensure_future(verifier.matches("wrong-1"))
        assert await asyncio.gather(first, second, again) == [False, False, False]
        assert await verifier.matches("right")
        # Remembered answers need no thread: they come back even with the pool gone.
        verifier.close()
        assert await verifier.matches("right")
        assert not await verifier.matches("wrong-2")
    finally:
        verifier.close()


def _basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_a_random_api_key_beside_basic_or_cookie_auth_gets_no_fresh_bucket(make_client):
    client = await make_client(
        {
            "GOWA_BASIC_AUTH": "a:1",
            "GOWA_API_KEY": "k1",
            "GOWA_RATE_LIMIT": "0.01",
            "GOWA_RATE_LIMIT_BURST": "1",
            "GOWA_AUTH_MAX_FAILURES": "0",
        }
    )
    # Basic auth plus a different random (wrong) X-Api-Key on each request.
    statuses = [
        (await _send(client, {**_basic("a", "1"), "X-Api-Key": secrets.token_hex(8)}))[0]
        for _ in range(3)
    ]
    assert statuses == [404, 429, 429]
    # The same with the dashboard's cookie.
    response = await client.post("/api/dashboard/login", json={"api_key": "k1"})
    csrf = (await response.json())["results"]["csrf_token"]
    statuses = [
        (await _send(client, {"X-CSRF-Token": csrf, "X-Api-Key": secrets.token_hex(8)}))[0]
        for _ in range(3)
    ]
    assert statuses == [404, 429, 429]
    # A dashboard login with the key shares the key's buckets (one principal).
    assert (await _send(client, {"X-Api-Key": "k1"}))[0] == 429


@pytest.mark.parametrize("name", ["sessions", "dashboard"])
async def test_sessions_named_like_api_folders_are_limited(make_client, name):
    client = await make_client(
        {"GOWA_API_KEY": "k1", "GOWA_RATE_LIMIT": "0.01", "GOWA_RATE_LIMIT_BURST": "1"}
    )
    key = {"X-Api-Key": "k1"}
    created = await client.post(
        "/api/sessions", json={"session_id": name, "start": False}, headers=key
    )
    assert created.status == 201
    body = {"phone": "1", "message": "x"}
    first = await client.post(f"/api/{name}/send/message", json=body, headers=key)
    assert first.status != 429
    for path in (f"/api/{name}/send/message", f"/api/{name}/message/ABC/read"):
        response = await client.post(path, json=body, headers=key)
        assert response.status == 429, path
    # The session routes under /api/sessions and the dashboard's are still not limited.
    for _ in range(3):
        assert (await client.get(f"/api/sessions/{name}", headers=key)).status == 200
        assert (await client.get("/api/dashboard/stats", headers=key)).status == 200


async def test_wrong_credentials_are_throttled_per_address_on_every_route(make_client):
    client = await make_client(
        {"GOWA_API_KEY": "k1", "GOWA_BASIC_AUTH": "a:1", "GOWA_AUTH_MAX_FAILURES": "5"}
    )
    login = await client.post("/api/dashboard/login", json={"api_key": "k1"})
    csrf = (await login.json())["results"]["csrf_token"]
    browser = {"Cookie": f"{COOKIE_NAME}={login.cookies[COOKIE_NAME].value}"}
    client.session.cookie_jar.clear()
    guesses = [
        (await client.get("/api/sessions", headers={"X-Api-Key": f"guess{n}"})).status
        for n in range(3)
    ]
    guesses.append((await client.get("/api/sessions", headers=_basic("a", "2"))).status)
    # The public auth-state route tells good from wrong keys, so it counts too.
    state = await client.get("/api/dashboard/auth", headers={"X-Api-Key": "guess"})
    assert (await state.json())["results"]["authenticated"] is False
    assert guesses == [401, 401, 401, 401]
    for headers in ({"X-Api-Key": "guess"}, {"X-Api-Key": "k1"}, _basic("a", "1")):
        response = await client.post("/send/message", json={"phone": "1"}, headers=headers)
        body = await response.json()
        assert (response.status, body["code"]) == (429, "TOO_MANY_REQUESTS"), headers
        assert 1 <= int(response.headers["Retry-After"]) <= 300
    # The dashboard login shares the budget; the public routes still answer.
    assert (await client.post("/api/dashboard/login", json={"api_key": "k1"})).status == 429
    assert (await client.get("/healthz")).status == 200
    state = await client.get("/api/dashboard/auth", headers={"X-Api-Key": "k1"})
    assert (await state.json())["results"]["authenticated"] is False
    # A browser already logged in (an unguessable cookie) keeps working.
    assert (await client.get("/api/sessions", headers=browser)).status == 200
    response = await client.post(
        "/api/sessions",
        json={"session_id": "c1", "start": False},
        headers={**browser, "X-CSRF-Token": csrf},
    )
    assert response.status == 201


def test_failure_throttle_window_addresses_and_memory():
    clock = Clock()
    throttle = FailureThrottle(3, 60.0, clock=clock, max_addresses=100)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        clock.now += 1
    assert throttle.retry_after("10.0.0.1") == 57  # the first failure was 3 s ago
    assert throttle.retry_after("10.0.0.2") == 0
    clock.now += 57
    assert throttle.retry_after("10.0.0.1") == 0  # the oldest failure left the window
    # IPv6 counts per /64; an IPv4-mapped address is its IPv4 address.
    assert client_address("2001:db8::1") == client_address("2001:db8::ffff:2")
    assert client_address("2001:db8:0:1::1") != client_address("2001:db8::1")
    assert client_address("::ffff:10.0.0.1") == "10.0.0.1"
    for n in range(1000):
        throttle.failed(f"10.1.{n // 256}.{n % 256}")
    assert len(throttle._failures) <= 100
    assert not FailureThrottle(0, 60.0).retry_after("x")


async def test_scoped_keys_need_an_admin_credential(make_client):
    client = await make_client()
    await client.post("/api/sessions", json={"session_id": "a", "start": False})
    response = await client.post("/api/keys", json={"sessions": ["a"]})
    body = await response.json()
    assert (response.status, body["code"]) == (409, "AUTH_DISABLED")


async def test_the_scoped_key_matrix_names_routes_that_exist(make_client):
    """A renamed route must not silently fall out of the read-only or admin-only lists."""
    from gowa_py.gateway import apikeys

    app = (await make_client()).server.app
    patterns = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    named = apikeys.ANY_KEY | apikeys.ADMIN_ONLY | apikeys.FULL_ONLY_GETS
    assert named | {apikeys.EVENTS_PATH} <= patterns
    gowa = apikeys.gowa_paths(app.router)
    assert {"/send/message", "/app/status", "/chats", "/message/{message_id}/read"} <= gowa
    assert not {p for p in gowa if p.startswith(("/api/", "/devices"))}
