"""GoWA's ``/message/{message_id}/*`` operations and ``/call/reject``."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

MESSAGE, CALL = "message", "call"
M = "/message/{message_id}"

ROUTES = [
    OpRoute("POST", f"{M}/read", ops.MarkAsRead, MESSAGE, "Mark as read", body="json"),
    OpRoute("POST", f"{M}/revoke", ops.RevokeMessage, MESSAGE, "Delete for everyone", body="json"),
    OpRoute("POST", f"{M}/delete", ops.DeleteMessage, MESSAGE, "Delete for me", body="json"),
    OpRoute("POST", f"{M}/reaction", ops.ReactMessage, MESSAGE, "React", body="json"),
    OpRoute("POST", f"{M}/update", ops.UpdateMessage, MESSAGE, "Edit", body="json"),
    OpRoute("POST", f"{M}/star", ops.StarMessage, MESSAGE, "Star", body="json"),
    OpRoute("POST", f"{M}/unstar", ops.UnstarMessage, MESSAGE, "Unstar", body="json"),
    OpRoute("POST", f"{M}/forward", ops.ForwardMessage, MESSAGE, "Forward", body="json"),
    OpRoute("GET", f"{M}/download", ops.DownloadMessage, MESSAGE, "Download media", timeout=120),
    OpRoute("POST", "/call/reject", ops.RejectCall, CALL, "Reject a call", body="json"),
]
