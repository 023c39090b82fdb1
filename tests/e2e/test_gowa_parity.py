"""What a client written for GoWA sees: result shapes and events, end to end in the sandbox.

One pair of paired sessions serves every check (each pairing costs about a second);
the checks are grouped by what they need rather than one test per field.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import is_event, new_phone, pair

pytestmark = pytest.mark.integration

ANN, BEN, CAL, DEE = "15550000311", "15550000312", "15550000313", "15550000314"
NOBODY = "15550000399"
A_JID, B_JID = f"{ANN}@s.whatsapp.net", f"{BEN}@s.whatsapp.net"


@pytest.fixture(scope="module")
def gw(sandbox, sandbox_gateway):
    new_phone(sandbox, ANN, "Ann")
    new_phone(sandbox, BEN, "Ben")
    pair(sandbox_gateway, sandbox, "ann", ANN)
    pair(sandbox_gateway, sandbox, "ben", BEN)
    return sandbox_gateway


def ok(gw, method, path, body=None, **kw):
    status, answer = gw.http.call(method, path, body, **kw)
    assert status == 200, (path, status, answer)
    assert answer["code"] == "SUCCESS", answer
    return answer["results"]


def test_user_check_answers_true_or_false_never_an_error(gw):
    for asked in (BEN, f"+{BEN}", B_JID):
        assert ok(gw, "GET", f"/api/ann/user/check?phone={asked}") == {"is_on_whatsapp": True}
    assert ok(gw, "GET", f"/api/ann/user/check?phone={NOBODY}") == {"is_on_whatsapp": False}


def test_user_info_lists_devices_and_resolves_lids(gw, sandbox):
    _, ben = sandbox.api("GET", f"/sim/phones/{BEN}")
    by_phone = ok(gw, "GET", f"/api/ann/user/info?phone={BEN}")
    assert by_phone["resolved_lid"] == ben["lid"]
    [data] = by_phone["data"]
    assert data["devices"] == [
        {
            "User": BEN,
            "Agent": 0,
            "Device": "CHROME",
            "Server": "s.whatsapp.net",
            "AD": f"{BEN}.0:1@s.whatsapp.net",
        }
    ]
    assert {"name", "verified_name", "status", "picture_id"} <= data.keys()
    by_lid = ok(gw, "GET", f"/api/ann/user/info?phone={ben['lid']}")
    assert by_lid["resolved_phone"] == BEN and by_lid["data"] == by_phone["data"]


def test_privacy_settings_are_whatsmeow_strings(gw):
    privacy = ok(gw, "GET", "/api/ann/user/my/privacy")
    assert privacy == {
        "group_add": "all",
        "last_seen": "all",
        "status": "all",
        "profile": "all",
        "read_receipts": "all",
    }


def linked_devices(sandbox, phone):
    status, body = sandbox.api("GET", f"/sim/phones/{phone}")
    assert status == 200, body
    return [device["device"] for device in body["devices"]]


def test_reconnect_and_logout_name_the_device(gw, sandbox):
    assert ok(gw, "GET", "/api/ann/app/reconnect") == {"device_id": "ann"}
    gw.wait_status("ann", {"CONNECTED"}, timeout=15)
    new_phone(sandbox, CAL, "Cal")
    pair(gw, sandbox, "cal", CAL)
    assert ok(gw, "GET", "/api/cal/app/logout") == {"device_id": "cal"}
    assert linked_devices(sandbox, CAL) == []


def test_deleting_a_session_logs_it_out_of_whatsapp_first(gw, sandbox, events):
    new_phone(sandbox, DEE, "Dee")
    pair(gw, sandbox, "dee", DEE)
    assert linked_devices(sandbox, DEE) == [1]
    status, body = gw.http.call("DELETE", "/devices/dee")
    assert status == 200 and body["results"] == {"device_id": "dee", "unlinked": True}, body
    assert linked_devices(sandbox, DEE) == []
    events.wait(is_event("session.deleted", "dee", unlinked=True), 5, "dee's deletion")

    status, body = gw.http.post("/api/sessions/ben/stop")
    assert status == 200, body
    gw.wait_status("ben", {"STOPPED"}, timeout=15)
    status, body = gw.http.call("DELETE", "/api/sessions/ben")
    assert status == 200 and body["results"] == {"id": "ben", "unlinked": False}, body
    assert "remove it there" in body["message"]
    assert linked_devices(sandbox, BEN) == [1]
    events.wait(is_event("session.deleted", "ben", unlinked=False), 5, "ben's deletion")
