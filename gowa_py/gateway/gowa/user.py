"""GoWA's ``/user/*`` operations."""

from __future__ import annotations

from gowa_py import operations as ops
from gowa_py.gateway.gowa.operation import OpRoute

USER = "user"

ROUTES = [
    OpRoute("GET", "/user/info", ops.UserInfo, USER, "User info"),
    OpRoute("GET", "/user/avatar", ops.UserAvatar, USER, "User avatar"),
    OpRoute(
        "POST",
        "/user/avatar",
        ops.ChangeAvatar,
        USER,
        "Change own avatar",
        body="form",
        media=("avatar",),
    ),
    OpRoute("POST", "/user/pushname", ops.ChangePushName, USER, "Change push name", body="json"),
    OpRoute("GET", "/user/my/privacy", ops.MyPrivacy, USER, "Own privacy settings"),
    OpRoute("GET", "/user/my/groups", ops.MyGroups, USER, "Joined groups"),
    OpRoute("GET", "/user/my/newsletters", ops.MyNewsletters, USER, "Followed newsletters"),
    OpRoute("GET", "/user/my/contacts", ops.MyContacts, USER, "Contacts"),
    OpRoute("GET", "/user/check", ops.UserCheck, USER, "Is a number on WhatsApp"),
    OpRoute("GET", "/user/business-profile", ops.BusinessProfile, USER, "Business profile"),
]
