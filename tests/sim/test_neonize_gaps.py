"""What the installed neonize lacks for GoWA parity, checked against the build itself.

docs/sandbox.md explains each GoWA operation that answers ``NOT_SUPPORTED`` (or has no
pending request) and each GoWA event that is never emitted by a whatsmeow call that
neonize's Go library does not export, or a whatsmeow event it does not forward. These
canaries fail as soon as a neonize build offers one, so the gap is closed instead of
documented for nothing. Both run in a fresh interpreter: loading neonize's library into the
test process would leave it there for every later test.
"""

from __future__ import annotations

import json
import subprocess
import sys

from gowa_py.sim.tokens import neonize_library_path

#: whatsmeow calls behind GoWA operations, absent from neonize's exports.
NOT_EXPORTED = {
    "GetBusinessProfile": "GET /user/business-profile",
    "UpdateGroupRequestParticipants": "POST /group/participant-requests/approve, /reject",
    "SendPasskeyResponse": "POST /app/passkey/response",
    "SendPasskeyConfirmation": "POST /app/passkey/confirm",
}
#: Exports the workers call: the check sees what is there.
EXPORTED = ("GetGroupRequestParticipants", "UpdateGroupParticipants", "GetUserInfo")

#: whatsmeow events behind GoWA webhook events (app-state sync), which neonize has no
#: message type for, so its Go event handler cannot forward them.
NOT_FORWARDED = {
    "LabelEdit": "label.edit",
    "LabelAssociationChat": "label.association",
    "DeleteForMe": "message.deleted",
}
#: Events the workers subscribe to: the check sees what is there.
FORWARDED = ("Message", "Receipt", "JoinedGroup", "GroupInfoEvent", "CallOffer")


def _run(code: str, *args: str) -> dict[str, bool]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, bool] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_neonize_exports_no_call_for_the_unsupported_operations() -> None:
    code = (
        "import ctypes, json, sys\n"
        "library = ctypes.CDLL(sys.argv[1])\n"
        "print(json.dumps({name: hasattr(library, name) for name in sys.argv[2:]}))\n"
    )
    found = _run(code, str(neonize_library_path()), *NOT_EXPORTED, *EXPORTED)
    assert {name: found[name] for name in EXPORTED} == dict.fromkeys(EXPORTED, True)
    offered = {NOT_EXPORTED[name] for name in NOT_EXPORTED if found[name]}
    assert not offered, f"neonize now exports a call for {offered}: implement it"


def test_neonize_forwards_no_app_state_event() -> None:
    code = (
        "import json, sys\n"
        "from neonize.events import EVENT_TO_INT\n"
        "from neonize.proto import Neonize_pb2\n"
        "types = set(Neonize_pb2.DESCRIPTOR.message_types_by_name)\n"
        "forwarded = {event.__name__ for event in EVENT_TO_INT}\n"
        "print(json.dumps({name: name in types or name in forwarded for name in sys.argv[1:]}))\n"
    )
    found = _run(code, *NOT_FORWARDED, *FORWARDED)
    assert {name: found[name] for name in FORWARDED} == dict.fromkeys(FORWARDED, True)
    offered = {NOT_FORWARDED[name] for name in NOT_FORWARDED if found[name]}
    assert not offered, f"neonize now forwards the event behind {offered}: emit it"
