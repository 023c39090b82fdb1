"""GoWA's ``user`` tag: profile, privacy, own groups, newsletters and contacts."""

from __future__ import annotations

from neonize.proto import Neonize_pb2 as pb

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import payloads
from workers.operations.context import Context, fail, handles, ok
from workers.operations.group import group_json
from workers.operations.messages import chat_of
from workers.operations.newsletter import newsletter_json


@handles(ops.UserInfo)
def user_info(ctx: Context, op: ops.UserInfo) -> p.OperationResult:
    jid, _ = chat_of(op.phone)
    data = []
    for entry in ctx.client.get_user_info(jid):
        info = entry.UserInfo
        data.append(
            {
                "verified_name": info.VerifiedName.Details.verifiedName
                if info.HasField("VerifiedName")
                else "",
                "status": info.Status,
                "picture_id": info.PictureID,
                "devices": [
                    {
                        "User": device.User,
                        "Agent": device.RawAgent,
                        "Device": "",
                        "Server": device.Server,
                        "AD": bool(device.Device),
                    }
                    for device in info.Devices
                ],
            }
        )
    return ok({"data": data}, "Success get user info")


@handles(ops.UserAvatar)
def user_avatar(ctx: Context, op: ops.UserAvatar) -> p.OperationResult:
    jid, _ = chat_of(op.phone)
    params = pb.GetProfilePictureParams(Preview=op.is_preview, IsCommunity=op.is_community)
    picture = ctx.client.get_profile_picture(jid, params)
    return ok({"url": picture.URL, "id": picture.ID, "type": picture.Type}, "Success get avatar")


@handles(ops.ChangeAvatar)
def change_avatar(ctx: Context, op: ops.ChangeAvatar) -> p.OperationResult:
    ctx.client.set_profile_photo(op.avatar.data)
    return ok(None, "Success change avatar")


@handles(ops.ChangePushName)
def change_push_name(ctx: Context, op: ops.ChangePushName) -> p.OperationResult:
    ctx.client.set_profile_name(op.push_name)
    return ok(None, "Success change push name")


@handles(ops.MyPrivacy)
def my_privacy(ctx: Context, op: ops.MyPrivacy) -> p.OperationResult:
    settings = ctx.client.get_privacy_settings()
    return ok(
        {
            "group_add": settings.GroupAdd,
            "last_seen": settings.LastSeen,
            "status": settings.Status,
            "profile": settings.Profile,
            "read_receipts": settings.ReadReceipts,
        },
        "Success get privacy",
    )


@handles(ops.MyGroups)
def my_groups(ctx: Context, op: ops.MyGroups) -> p.OperationResult:
    groups = [group_json(info) for info in ctx.client.get_joined_groups()]
    return ok({"data": groups}, "Success get list groups")


@handles(ops.MyNewsletters)
def my_newsletters(ctx: Context, op: ops.MyNewsletters) -> p.OperationResult:
    data = [newsletter_json(item) for item in ctx.client.get_subscribed_newletters()]
    return ok({"data": data}, "Success get list newsletter")


@handles(ops.MyContacts)
def my_contacts(ctx: Context, op: ops.MyContacts) -> p.OperationResult:
    contacts = [
        {
            "jid": payloads.jid_str(contact.JID),
            "name": contact.Info.FullName or contact.Info.PushName or contact.Info.BusinessName,
        }
        for contact in ctx.client.contact.get_all_contacts()
    ]
    return ok({"data": contacts}, "Success get list contacts")


@handles(ops.UserCheck)
def user_check(ctx: Context, op: ops.UserCheck) -> p.OperationResult:
    number = op.phone.split("@")[0].lstrip("+")
    found = ctx.client.is_on_whatsapp(f"+{number}")
    return ok({"is_on_whatsapp": any(item.IsIn for item in found)}, "Success check user")


@handles(ops.BusinessProfile)
def business_profile(ctx: Context, op: ops.BusinessProfile) -> p.OperationResult:
    raise fail(
        p.ErrorCode.NOT_SUPPORTED,
        "business profiles are not available: the neonize client has no business-profile call",
    )
