import msgspec
import pytest

from gowa_py import operations as ops
from gowa_py import protocol as p

COMMANDS = [
    p.Ping(),
    p.GetStatus(),
    p.GetQR(),
    p.PairPhone(phone="15550001"),
    p.Logout(),
    p.Reconnect(),
    p.Operation(input=ops.MarkAsRead(message_id="3EB0", phone="155")),
    p.ReplayEvents(after_seq=4),
    p.Shutdown(),
]
RESULTS = [
    p.Pong(pid=1, uptime_s=2.5),
    p.Status(state=p.SessionState.CONNECTED, since=1.0, me=p.Me(jid="1@s.whatsapp.net")),
    p.QRCode(code="2@abc", expires_at=3.0),
    p.PairCode(code="ABCD-EFGH"),
    p.OperationResult(results={"message_id": "3EB0"}, message="Success"),
    p.Done(),
    p.Events(
        events=[
            p.Event(
                id="e", session_id="s", name="message", timestamp=1.0, payload={"body": "hi"}, seq=3
            )
        ]
    ),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_requests_round_trip(command):
    request = p.Request(id="r1", deadline=12.5, command=command)
    assert p.decode_request(p.encode(request)) == request


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_replies_round_trip(result):
    reply = p.Reply(id="r1", result=result)
    assert p.decode_to_gateway(p.encode(reply)) == reply


def test_error_reply_and_hello_are_told_apart():
    error = p.Reply(id="r", error=p.ErrorInfo(code=p.ErrorCode.SESSION_NOT_CONNECTED, message="no"))
    hello = p.Hello(session_id="s", pid=3, started_at=1.0)
    assert p.decode_to_gateway(p.encode(error)) == error
    assert p.decode_to_gateway(p.encode(hello)) == hello


def test_unknown_command_tag_is_rejected():
    raw = msgspec.msgpack.encode(
        {"type": "request", "id": "1", "deadline": 1.0, "command": {"type": "format_disk"}}
    )
    with pytest.raises(msgspec.ValidationError):
        p.decode_request(raw)


def test_worker_config_round_trips_through_json():
    config = p.WorkerConfig(
        session_id="s",
        session_dir="/d",
        command_endpoint="ipc:///c",
        event_endpoint="ipc:///e",
        parent_pid=1,
        sandbox=p.SandboxConfig(proxy="http://x", ca_file="/ca", root_key="00" * 32),
    )
    assert p.decode_config(p.encode_config(config)) == config


ZYGOTE_REPORTS = [
    p.ZygoteReady(pid=7),
    p.ZygoteSpawned(req=3, pid=8),
    p.ZygoteFailed(req=4, error="fork failed: no memory"),
    p.ZygoteExit(pid=8, code=-9),
]


@pytest.mark.parametrize("report", ZYGOTE_REPORTS)
def test_zygote_reports_round_trip(report):
    assert p.decode_zygote_report(p.encode_zygote(report)) == report


def test_zygote_spawn_round_trips_and_nothing_else_is_a_spawn():
    spawn = p.ZygoteSpawn(req=1, env={p.CONFIG_ENV: "{}"}, cwd="/tmp")
    data = p.encode_zygote(spawn)
    assert msgspec.json.decode(data)["op"] == "spawn"
    assert p.decode_zygote_request(data) == spawn
    for other in [p.encode_zygote(p.ZygoteReady(pid=1)), b'{"op": "spawn", "req": 1}', b"[]"]:
        with pytest.raises(msgspec.DecodeError):
            p.decode_zygote_request(other)


def test_env_names_crossing_the_process_boundary_are_written_once():
    """Each ``*_ENV`` name lives in protocol.py; product code refers to the constant."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    names = {value for key, value in vars(p).items() if key.endswith("_ENV")}
    assert {"GOWA_WORKER_CONFIG", "GOWA_WORKER_KSM", "GOWA_WORKER_TIMER_SLACK_NS"} <= names
    offenders = [
        f"{path.relative_to(root)}: {name}"
        for folder in ("gowa_py", "workers")
        for path in (root / folder).rglob("*.py")
        if path.name != "protocol.py"
        for name in names
        if f'"{name}"' in path.read_text()
    ]
    assert offenders == []


def _event(name, payload):
    return p.Event(id="e", session_id="s", name=name, timestamp=1.0, payload=payload)


def test_status_payload_is_read_typed():
    payload = {
        "status": "CONNECTED",
        "previous": "STARTING",
        "error": None,
        "me": {"jid": "1@s.whatsapp.net", "push_name": "Ann"},
    }
    change = p.read_payload(_event(p.SESSION_STATUS, payload), p.StatusPayload)
    assert change == p.StatusPayload(
        status=p.SessionState.CONNECTED,
        previous=p.SessionState.STARTING,
        me=p.Me(jid="1@s.whatsapp.net", push_name="Ann"),
    )
    gateway_made = {"status": "STOPPED", "previous": None, "error": "stopped"}
    assert p.read_payload(_event(p.SESSION_STATUS, gateway_made), p.StatusPayload).error == (
        "stopped"
    )


@pytest.mark.parametrize(
    "payload", [{}, {"status": "DANCING"}, {"status": "CONNECTED", "me": {"push_name": "x"}}]
)
def test_a_status_payload_that_does_not_fit_is_none(payload):
    assert p.read_payload(_event(p.SESSION_STATUS, payload), p.StatusPayload) is None


def test_parking_payload():
    event = _event(p.SESSION_QR_EXPIRED, {"codes": 6, "message": "6 QR codes expired"})
    assert p.read_payload(event, p.ParkingPayload) == p.ParkingPayload("6 QR codes expired")
    assert p.read_payload(_event(p.SESSION_PASSKEY_REQUIRED, {}), p.ParkingPayload) is None
