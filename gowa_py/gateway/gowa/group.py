"""GoWA's ``/group*`` operations."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

GROUP = "group"
P = "/group/participants"
R = "/group/participant-requests"

ROUTES = [
    OpRoute("GET", "/group/info", ops.GroupInfo, GROUP, "Group info"),
    OpRoute("POST", "/group", ops.CreateGroup, GROUP, "Create group", body="json"),
    OpRoute("GET", P, ops.GroupParticipants, GROUP, "Participants"),
    OpRoute("POST", P, ops.AddParticipants, GROUP, "Add participants", body="json"),
    OpRoute("GET", f"{P}/export", ops.ExportGroupParticipants, GROUP, "Participants as CSV"),
    OpRoute("POST", f"{P}/remove", ops.RemoveParticipants, GROUP, "Remove", body="json"),
    OpRoute("POST", f"{P}/promote", ops.PromoteParticipants, GROUP, "Promote", body="json"),
    OpRoute("POST", f"{P}/demote", ops.DemoteParticipants, GROUP, "Demote", body="json"),
    OpRoute("POST", "/group/join-with-link", ops.JoinGroupWithLink, GROUP, "Join", body="json"),
    OpRoute("GET", "/group/info-from-link", ops.GroupInfoFromLink, GROUP, "Info from link"),
    OpRoute("GET", R, ops.GroupRequests, GROUP, "Pending join requests"),
    OpRoute("POST", f"{R}/approve", ops.ApproveGroupRequests, GROUP, "Approve", body="json"),
    OpRoute("POST", f"{R}/reject", ops.RejectGroupRequests, GROUP, "Reject", body="json"),
    OpRoute("POST", "/group/leave", ops.LeaveGroup, GROUP, "Leave", body="json"),
    OpRoute(
        "POST",
        "/group/photo",
        ops.SetGroupPhoto,
        GROUP,
        "Set or remove photo",
        body="form",
        media=("photo",),
        media_required=False,
    ),
    OpRoute("POST", "/group/name", ops.SetGroupName, GROUP, "Rename", body="json"),
    OpRoute("POST", "/group/locked", ops.SetGroupLocked, GROUP, "Lock info", body="json"),
    OpRoute("POST", "/group/announce", ops.SetGroupAnnounce, GROUP, "Announce mode", body="json"),
    OpRoute("POST", "/group/topic", ops.SetGroupTopic, GROUP, "Description", body="json"),
    OpRoute("GET", "/group/invite-link", ops.GroupInviteLink, GROUP, "Invite link"),
]
