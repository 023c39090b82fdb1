"""GoWA's ``group`` tag: group info, participants, join requests, invite links, settings."""

from __future__ import annotations

import io
import uuid
from typing import Any

from neonize.proto import Neonize_pb2 as pb

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import lids, payloads
from workers.jid import parse_jid
from workers.operations.context import Context, fail, handles, ok
from workers.operations.media import profile_jpeg
from workers.timefmt import rfc3339


def group_jid(value: str) -> pb.JID:
    jid = parse_jid(value if "@" in value else f"{value}@g.us")
    if jid.Server != "g.us":
        raise fail(p.ErrorCode.INVALID_JID, f"{value!r} is not a group JID (…@g.us)")
    return jid


def invite_code(link: str) -> str:
    return link.strip().rstrip("/").rsplit("/", 1)[-1]


def _time(value: int) -> str:
    return rfc3339(value) if value else "0001-01-01T00:00:00Z"


def _phone(client: Any, participant: pb.GroupParticipant) -> pb.JID | None:
    """The phone JID of a participant: its JID, else its ``PhoneNumber``, else the LID map."""
    wire = participant.JID
    if wire.Server != lids.LID_SERVER:
        return wire
    if participant.PhoneNumber.User:
        return participant.PhoneNumber
    return lids.pn_for(client, wire)


def participant_json(client: Any, participant: pb.GroupParticipant) -> dict[str, Any]:
    """GoWA's participant: the phone JID where it is known, the LID in ``lid``."""
    wire, phone = participant.JID, _phone(client, participant)
    lid = participant.LID if participant.LID.User else wire
    return {
        "jid": lids.bare(phone if phone is not None else wire),
        "phone_number": phone.User if phone is not None else "",
        "lid": lids.bare(lid) if lid.Server == lids.LID_SERVER else "",
        "display_name": participant.DisplayName,
        "is_admin": participant.IsAdmin,
        "is_super_admin": participant.IsSuperAdmin,
    }


def _set_by_pn(client: Any, jid: pb.JID) -> str:
    """whatsmeow's ``NameSetByPN``/``TopicSetByPN``: the phone JID behind a LID setter
    (empty when the setter is already a phone JID, as whatsmeow leaves it)."""
    found = lids.pn_for(client, jid)
    return lids.bare(found) if found is not None else ""


def _addressing_mode(info: pb.GroupInfo) -> str:
    """whatsmeow's ``AddressingMode`` (neonize does not carry it): the participants are
    addressed by LID in a ``lid`` group, by phone JID in a ``pn`` one."""
    if not info.Participants:
        return ""
    return "lid" if info.Participants[0].JID.Server == lids.LID_SERVER else "pn"


def _add_request(item: pb.GroupParticipant) -> dict[str, Any] | None:
    request = item.AddRequest
    if not request.Code:
        return None
    return {"Code": request.Code, "Expiration": _time(int(request.Expiration))}


def group_json(client: Any, info: pb.GroupInfo) -> dict[str, Any]:
    """whatsmeow's ``types.GroupInfo`` JSON (GoWA returns it as is). neonize does not carry
    ``CreatorCountryCode``, ``MemberAddMode``, ``Suspended`` or ``IsJoinApprovalRequired``:
    they are left out rather than guessed."""
    return {
        "JID": payloads.jid_str(info.JID),
        "OwnerJID": payloads.jid_str(info.OwnerJID),
        "OwnerPN": payloads.jid_str(info.OwnerPN),
        "Name": info.GroupName.Name,
        "NameSetAt": _time(info.GroupName.NameSetAt),
        "NameSetBy": payloads.jid_str(info.GroupName.NameSetBy),
        "NameSetByPN": _set_by_pn(client, info.GroupName.NameSetBy),
        "Topic": info.GroupTopic.Topic,
        "TopicID": info.GroupTopic.TopicID,
        "TopicSetAt": _time(info.GroupTopic.TopicSetAt),
        "TopicSetBy": payloads.jid_str(info.GroupTopic.TopicSetBy),
        "TopicSetByPN": _set_by_pn(client, info.GroupTopic.TopicSetBy),
        "TopicDeleted": info.GroupTopic.TopicDeleted,
        "IsLocked": info.GroupLocked.isLocked,
        "IsAnnounce": info.GroupAnnounce.IsAnnounce,
        "AnnounceVersionID": info.GroupAnnounce.AnnounceVersionID,
        "IsEphemeral": info.GroupEphemeral.IsEphemeral,
        "DisappearingTimer": info.GroupEphemeral.DisappearingTimer,
        "IsIncognito": info.GroupIncognito.IsIncognito
        if info.HasField("GroupIncognito")
        else False,
        "IsParent": info.GroupParent.IsParent,
        "DefaultMembershipApprovalMode": info.GroupParent.DefaultMembershipApprovalMode,
        "AddressingMode": _addressing_mode(info),
        "LinkedParentJID": payloads.jid_str(info.GroupLinkedParent.LinkedParentJID),
        "IsDefaultSubGroup": info.GroupIsDefaultSub.IsDefaultSubGroup,
        "GroupCreated": _time(info.GroupCreated),
        "ParticipantVersionID": info.ParticipantVersionID,
        "ParticipantCount": len(info.Participants),
        "Participants": [
            {
                "JID": payloads.jid_str(item.JID),
                "PhoneNumber": payloads.jid_str(item.PhoneNumber),
                "LID": payloads.jid_str(item.LID),
                "IsAdmin": item.IsAdmin,
                "IsSuperAdmin": item.IsSuperAdmin,
                "DisplayName": item.DisplayName,
                "Error": item.Error,
                "AddRequest": _add_request(item),
            }
            for item in info.Participants
        ],
    }


@handles(ops.GroupInfo)
def group_info(ctx: Context, op: ops.GroupInfo) -> p.OperationResult:
    return ok(
        group_json(ctx.client, ctx.client.get_group_info(group_jid(op.group_id))),
        "Success get group info",
    )


@handles(ops.CreateGroup)
def create_group(ctx: Context, op: ops.CreateGroup) -> p.OperationResult:
    members = [parse_jid(item) for item in op.participants]
    info = ctx.client.create_group(op.title, members)
    group_id = payloads.jid_str(info.JID)
    ctx.store.set_chat(group_id, name=op.title)
    return ok({"group_id": group_id}, f"Success created group with id {group_id}")


def _participants(ctx: Context, op: ops.GroupRef) -> tuple[str, dict[str, Any]]:
    info = ctx.client.get_group_info(group_jid(op.group_id))
    group_id = payloads.jid_str(info.JID)
    return group_id, {
        "group_id": group_id,
        "name": info.GroupName.Name,
        "participants": [participant_json(ctx.client, item) for item in info.Participants],
    }


@handles(ops.GroupParticipants)
def group_participants(ctx: Context, op: ops.GroupParticipants) -> p.OperationResult:
    _, result = _participants(ctx, op)
    return ok(result, "Success getting group participants")


@handles(ops.ExportGroupParticipants)
def export_participants(ctx: Context, op: ops.ExportGroupParticipants) -> p.OperationResult:
    import csv

    group_id, result = _participants(ctx, op)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["participant_jid", "phone_number", "lid", "display_name", "role"])
    for item in result["participants"]:
        role = (
            "super_admin" if item["is_super_admin"] else "admin" if item["is_admin"] else "member"
        )
        writer.writerow(
            [item["jid"], item["phone_number"], item["lid"], item["display_name"], role]
        )
    return p.OperationResult(
        content=buffer.getvalue().encode(),
        content_type="text/csv; charset=utf-8",
        filename=f"group-{group_id.replace('@', '_')}-participants.csv",
    )


#: GoWA's answers to the four participant changes.
MANAGED = {
    "add": "Success add participants",
    "remove": "Success delete participants",
    "promote": "Success promote participants",
    "demote": "Success demote participants",
}


def _manage(ctx: Context, op: ops.ManageParticipants, action: str) -> p.OperationResult:
    from neonize.utils.enum import ParticipantChange

    jid = group_jid(op.group_id)
    changes = ctx.client.update_group_participants(
        jid, [parse_jid(item) for item in op.participants], ParticipantChange(action)
    )
    results = [
        {
            "participant": lids.bare(_phone(ctx.client, item) or item.JID),
            "status": "error" if item.Error else "success",
            "message": f"Failed to {action} participant (error {item.Error})"
            if item.Error
            else "Action success",
        }
        for item in changes
    ]
    return ok(results, MANAGED[action])


@handles(ops.AddParticipants)
def add_participants(ctx: Context, op: ops.AddParticipants) -> p.OperationResult:
    return _manage(ctx, op, "add")


@handles(ops.RemoveParticipants)
def remove_participants(ctx: Context, op: ops.RemoveParticipants) -> p.OperationResult:
    return _manage(ctx, op, "remove")


@handles(ops.PromoteParticipants)
def promote_participants(ctx: Context, op: ops.PromoteParticipants) -> p.OperationResult:
    return _manage(ctx, op, "promote")


@handles(ops.DemoteParticipants)
def demote_participants(ctx: Context, op: ops.DemoteParticipants) -> p.OperationResult:
    return _manage(ctx, op, "demote")


@handles(ops.JoinGroupWithLink)
def join_group(ctx: Context, op: ops.JoinGroupWithLink) -> p.OperationResult:
    jid = ctx.client.join_group_with_link(invite_code(op.link))
    group_id = payloads.jid_str(jid)
    return ok({"group_id": group_id}, "Success joined group")


@handles(ops.GroupInfoFromLink)
def group_info_from_link(ctx: Context, op: ops.GroupInfoFromLink) -> p.OperationResult:
    info = ctx.client.get_group_info_from_link(invite_code(op.link))
    return ok(
        {
            "group_id": payloads.jid_str(info.JID),
            "name": info.GroupName.Name,
            "topic": info.GroupTopic.Topic,
            "created_at": _time(info.GroupCreated),
            "participant_count": len(info.Participants),
            "is_locked": info.GroupLocked.isLocked,
            "is_announce": info.GroupAnnounce.IsAnnounce,
            "is_ephemeral": info.GroupEphemeral.IsEphemeral,
            "description": info.GroupTopic.Topic,
        },
        "Success get group info from link",
    )


@handles(ops.GroupRequests)
def group_requests(ctx: Context, op: ops.GroupRequests) -> p.OperationResult:
    requests = ctx.client.get_group_request_participants(group_jid(op.group_id))
    return ok(
        [
            {
                "jid": payloads.jid_str(item.Participant),
                "phone_number": item.Participant.User,
                "display_name": "",
                "requested_at": _time(item.TimeAt),
            }
            for item in requests
        ],
        "Success getting list requested participants",
    )


def _requests_unsupported(ctx: Context, op: ops.ManageParticipants) -> p.OperationResult:
    group_jid(op.group_id)
    raise fail(
        p.ErrorCode.NOT_SUPPORTED,
        "approving or rejecting join requests is not available: the neonize client has no "
        "call for it",
    )


handles(ops.ApproveGroupRequests)(_requests_unsupported)
handles(ops.RejectGroupRequests)(_requests_unsupported)


@handles(ops.LeaveGroup)
def leave_group(ctx: Context, op: ops.LeaveGroup) -> p.OperationResult:
    ctx.client.leave_group(group_jid(op.group_id))
    return ok(None, "Success leave group")


@handles(ops.SetGroupPhoto)
def set_group_photo(ctx: Context, op: ops.SetGroupPhoto) -> p.OperationResult:
    jid = group_jid(op.group_id)
    if op.photo is None:
        raise fail(
            p.ErrorCode.NOT_SUPPORTED,
            "removing a group photo is not available: neonize's SetGroupPhoto refuses "
            "empty data ('the given data is not a valid image')",
        )
    picture_id = ctx.client.set_group_photo(jid, profile_jpeg(op.photo.data, "group photo"))
    message = "Success update group photo"
    return ok({"picture_id": picture_id, "message": message}, message)


@handles(ops.SetGroupName)
def set_group_name(ctx: Context, op: ops.SetGroupName) -> p.OperationResult:
    jid = group_jid(op.group_id)
    ctx.client.set_group_name(jid, op.name)
    ctx.store.set_chat(payloads.jid_str(jid), name=op.name)
    return ok(None, f"Success update group name to '{op.name}'")


@handles(ops.SetGroupLocked)
def set_group_locked(ctx: Context, op: ops.SetGroupLocked) -> p.OperationResult:
    ctx.client.set_group_locked(group_jid(op.group_id), op.locked)
    return ok(None, "Success set group as locked" if op.locked else "Success set group as unlocked")


@handles(ops.SetGroupAnnounce)
def set_group_announce(ctx: Context, op: ops.SetGroupAnnounce) -> p.OperationResult:
    ctx.client.set_group_announce(group_jid(op.group_id), op.announce)
    return ok(
        None, "Success enable announce mode" if op.announce else "Success disable announce mode"
    )


@handles(ops.SetGroupTopic)
def set_group_topic(ctx: Context, op: ops.SetGroupTopic) -> p.OperationResult:
    jid = group_jid(op.group_id)
    previous = ctx.client.get_group_info(jid).GroupTopic.TopicID
    ctx.client.set_group_topic(jid, previous, uuid.uuid4().hex.upper()[:32], op.topic)
    return ok(None, "Success update group topic" if op.topic else "Success remove group topic")


@handles(ops.GroupInviteLink)
def group_invite_link(ctx: Context, op: ops.GroupInviteLink) -> p.OperationResult:
    jid = group_jid(op.group_id)
    link = ctx.client.get_group_invite_link(jid, op.reset)
    return ok(
        {"invite_link": link, "group_id": payloads.jid_str(jid)}, "Success get group invite link"
    )
