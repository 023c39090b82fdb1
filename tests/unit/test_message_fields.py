"""GoWA's optional message payload fields from real WhatsApp protobufs (no sandbox can
send a Click-to-WhatsApp ad or a contacts array, so these are built here)."""

from __future__ import annotations

from neonize.proto import Neonize_pb2 as pb
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as e2e

from workers.message_fields import special_fields, vcard_phone

VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice\r\nTEL;type=Mobile:+62 812\r\n 3456\r\nEND:VCARD"


def test_ad_referral_keeps_set_fields_only() -> None:
    ad = e2e.ContextInfo.ExternalAdReplyInfo(
        title="Your Dream Farm",
        ctwaClid="CLID",
        sourceApp="facebook",
        mediaType=e2e.ContextInfo.ExternalAdReplyInfo.IMAGE,
        showAdAttribution=True,
        clickToWhatsappCall=False,
    )
    text = e2e.ExtendedTextMessage(text="hi", contextInfo=e2e.ContextInfo(externalAdReply=ad))
    fields = special_fields(pb.Message(Message=e2e.Message(extendedTextMessage=text)))
    assert fields == {
        "referral": {
            "ctwa_clid": "CLID",
            "source_app": "facebook",
            "ad_title": "Your Dream Farm",
            "media_type": "IMAGE",
            "show_ad_attribution": True,
            "click_to_whatsapp_call": False,
        }
    }


def test_contacts_array_view_once_and_plain_text() -> None:
    contacts = e2e.ContactsArrayMessage(
        contacts=[e2e.ContactMessage(displayName="Alice", vcard=VCARD)]
    )
    event = pb.Message(Message=e2e.Message(contactsArrayMessage=contacts), IsViewOnce=True)
    assert special_fields(event) == {
        "contacts_array": [{"displayName": "Alice", "vcard": VCARD, "phone_number": "+62 8123456"}],
        "view_once": True,
    }
    assert special_fields(pb.Message(Message=e2e.Message(conversation="hi"))) == {}
    assert vcard_phone("BEGIN:VCARD\nFN:x\nEND:VCARD") == ""
