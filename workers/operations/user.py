"""GoWA's ``user`` tag: profile, privacy, own groups, newsletters and contacts."""

from __future__ import annotations

from typing import Any

from neonize.exc import IsOnWhatsAppError
from neonize.proto import Neonize_pb2 as pb

from gowa_py import operations as ops
from gowa_py import protocol as p
from workers import lids, payloads
from workers.operations.context import Context, fail, handles, ok
from workers.operations.group import group_json
from workers.operations.media import profile_jpeg
from workers.operations.messages import chat_of
from workers.operations.newsletter import newsletter_json

#: GoWA names a device by its number through this table (``utils.GetPlatformName``).
PLATFORMS = (
    "UNKNOWN",
    "CHROME",
    "FIREFOX",
    "IE",
    "OPERA",
    "SAFARI",
    "EDGE",
    "DESKTOP",
    "IPAD",
    "ANDROID_TABLET",
    "OHANA",
    "ALOHA",
    "CATALINA",
    "TCL_TV",
)


def device_json(device: pb.JID) -> dict[str, Any]:
    """One entry of GoWA's ``devices`` (whatsmeow's field names, ``AD`` as ``ADString``)."""
    number = device.Device
    return {
        "User": device.User,
        "Agent": device.RawAgent,
        "Device": PLATFORMS[number] if number < len(PLATFORMS) else "UNKNOWN",
        "Server": device.Server,
        "AD": f"{device.User}.{device.RawAgent}:{number}@{device.Server}",
    }


@handles(ops.UserInfo)
def user_info(ctx: Context, op: ops.UserInfo) -> p.OperationResult:
    """GoWA's ``Info``: a LID is asked as the phone behind it when known, both are named."""
    jid, _ = chat_of(op.phone)
    results: dict[str, Any] = {"data": []}
    if (pn := lids.pn_for(ctx.client, jid)) is not None:
        results["resolved_phone"] = pn.User
        jid = pn
    if (lid := lids.lid_for(ctx.client, jid)) is not None:
        results["resolved_lid"] = lids.bare(lid)
    for entry in ctx.client.get_user_info(jid):
        info = entry.UserInfo
        chat = ctx.store.chat(lids.bare(entry.JID))
        results["data"].append(
            {
                "name": chat["name"] if chat else "",
                "verified_name": info.VerifiedName.Details.verifiedName
                if info.HasField("VerifiedName")
                else "",
                "status": info.Status,
                "picture_id": info.PictureID,
                "devices": [device_json(device) for device in info.Devices],
            }
        )
    return ok(results, "Success get user info")


@handles(ops.UserAvatar)
def user_avatar(ctx: Context, op: ops.UserAvatar) -> p.OperationResult:
    jid, _ = chat_of(op.phone)
    params = pb.GetProfilePictureParams(Preview=op.is_preview, IsCommunity=op.is_community)
    picture = ctx.client.get_profile_picture(jid, params)
    return ok({"url": picture.URL, "id": picture.ID, "type": picture.Type}, "Success get avatar")


@handles(ops.ChangeAvatar)
def change_avatar(ctx: Context, op: ops.ChangeAvatar) -> p.OperationResult:
    ctx.client.set_profile_photo(profile_jpeg(op.avatar.data, "avatar"))
    return ok(None, "Success change avatar")


@handles(ops.ChangePushName)
def change_push_name(ctx: Context, op: ops.ChangePushName) -> p.OperationResult:
    ctx.client.set_profile_name(op.push_name)
    return ok(None, "Success change push name")


#: whatsmeow's ``types.PrivacySetting`` strings (what GoWA returns) for neonize's enum.
PRIVACY = {
    pb.PrivacySettings.UNDEFINED: "",
    pb.PrivacySettings.ALL: "all",
    pb.PrivacySettings.CONTACTS: "contacts",
    pb.PrivacySettings.CONTACT_BLACKLIST: "contact_blacklist",
    pb.PrivacySettings.MATCH_LAST_SEEN: "match_last_seen",
    pb.PrivacySettings.KNOWN: "known",
    pb.PrivacySettings.NONE: "none",
}


@handles(ops.MyPrivacy)
def my_privacy(ctx: Context, op: ops.MyPrivacy) -> p.OperationResult:
    settings = ctx.client.get_privacy_settings()
    fields = {
        "group_add": settings.GroupAdd,
        "last_seen": settings.LastSeen,
        "status": settings.Status,
        "profile": settings.Profile,
        "read_receipts": settings.ReadReceipts,
    }
    return ok({k: PRIVACY.get(v, "") for k, v in fields.items()}, "Success get privacy")


@handles(ops.MyGroups)
def my_groups(ctx: Context, op: ops.MyGroups) -> p.OperationResult:
    groups = [group_json(ctx.client, info) for info in ctx.client.get_joined_groups()]
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
    """GoWA's ``IsOnWhatsapp``: groups and other non-user JIDs are not checked (true)."""
    if "@" in op.phone and not op.phone.endswith("@s.whatsapp.net"):
        return ok({"is_on_whatsapp": True}, "Success check user")
    number = op.phone.split("@")[0].lstrip("+")
    try:
        found = ctx.client.is_on_whatsapp(f"+{number}")
    except IsOnWhatsAppError as exc:
        # neonize reports an answer without users as this error; WhatsApp knows no such number.
        if "returned nothing" not in str(exc):
            raise
        found = []
    return ok(
        {"is_on_whatsapp": bool(found) and all(item.IsIn for item in found)}, "Success check user"
    )


@handles(ops.BusinessProfile)
def business_profile(ctx: Context, op: ops.BusinessProfile) -> p.OperationResult:
    raise fail(
        p.ErrorCode.NOT_SUPPORTED,
        "business profiles are not available: the neonize client has no business-profile call",
    )
