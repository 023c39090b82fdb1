"""QR pairing: ``pair-device`` refs out, a phone scan in, ``pair-success``, then 515.

A companion without a stored JID connects with registration data instead of a login.
The sandbox sends it six QR refs; the companion renders each as a QR string containing
its noise key, identity key and ADV secret. ``POST /sim/phones/{p}/scan`` hands such a
string to :meth:`Pairing.scan`, which plays the phone: it checks the keys against the
connection that owns the ref, registers the device, and sends ``pair-success``. When the
companion answers with ``pair-device-sign``, a ``<stream:error code="515"/>`` tells it to
reconnect and log in.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from dataclasses import dataclass

from .binary import Node
from .connection import Connection
from .devicezero import share_app_state_key
from .errors import SimError
from .jid import JID, SERVER_JID
from .network import Network, now
from .pb import ClientPayload, DeviceProps
from .phone import PrimaryPhone
from .store import Device, Phone, SignedPreKey

log = logging.getLogger(__name__)

QR_REF_COUNT = 6
#: WhatsApp's WebAuthn relying party: the passkey an account holds is registered for it.
PASSKEY_RP_ID = "whatsapp.com"


class ScanError(SimError):
    """A QR string could not be scanned."""


@dataclass(frozen=True)
class Registration:
    """The keys a new companion announces in its ClientPayload (``devicePairingData``)."""

    registration_id: int
    identity_pub: bytes
    skey: SignedPreKey
    platform: str

    @classmethod
    def from_payload(cls, payload: ClientPayload) -> Registration:
        data = payload.devicePairingData
        platform = ""
        if data.deviceProps:
            platform = DeviceProps.FromString(data.deviceProps).os
        return cls(
            registration_id=int.from_bytes(data.eRegid, "big"),
            identity_pub=data.eIdent,
            skey=SignedPreKey(int.from_bytes(data.eSkeyID, "big"), data.eSkeyVal, data.eSkeySig),
            platform=platform,
        )


@dataclass(frozen=True)
class QRData:
    ref: str
    noise_pub: bytes
    identity_pub: bytes
    adv_secret: bytes

    @classmethod
    def parse(cls, qr: str) -> QRData:
        """Parse ``https://wa.me/settings/linked_devices#ref,noise,identity,adv[,type]``."""
        parts = qr.split("#", 1)[-1].split(",")
        if len(parts) < 4:
            raise ScanError("INVALID_QR", "not a WhatsApp linking QR code")
        try:
            keys = [base64.b64decode(p, validate=True) for p in parts[1:4]]
        except binascii.Error as exc:
            raise ScanError("INVALID_QR", f"bad base64 in QR code: {exc}") from exc
        if any(len(k) != 32 for k in keys):
            raise ScanError("INVALID_QR", "QR code keys must be 32 bytes")
        return cls(parts[0], *keys)


class Pairing:
    """QR refs on offer and the companions that are mid-way through linking."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self._refs: dict[str, Connection] = {}
        self._registrations: dict[Connection, Registration] = {}
        self._linking: dict[Connection, tuple[Device, str]] = {}

    def begin(self, conn: Connection) -> None:
        """Offer QR refs to a companion that connected with registration data."""
        self._registrations[conn] = Registration.from_payload(conn.payload)
        refs = [f"2@{secrets.token_urlsafe(33)}" for _ in range(QR_REF_COUNT)]
        for ref in refs:
            self._refs[ref] = conn
        conn.send(
            Node(
                "iq",
                {"from": SERVER_JID, "type": "set", "id": self.net.next_id(), "xmlns": "md"},
                [Node("pair-device", {}, [Node("ref", {}, ref.encode()) for ref in refs])],
            )
        )

    def forget(self, conn: Connection) -> None:
        """Drop state of a closed connection (a half-linked device is removed again)."""
        self._registrations.pop(conn, None)
        for ref in [r for r, c in self._refs.items() if c is conn]:
            del self._refs[ref]
        linking = self._linking.pop(conn, None)
        if linking is not None:
            device, _ = linking
            log.warning(
                "companion %s:%s left before confirming the pairing", device.phone, device.device
            )
            self.net.store.delete_device(device.phone, device.device)

    def scan(self, phone: Phone, qr: str) -> Device:
        """Link the companion showing ``qr`` to ``phone`` (what the phone app does)."""
        conn, data = self._showing(qr)
        device = self.link(conn, phone, data.adv_secret)
        log.info("phone %s scanned a QR: linking device %d", phone.phone, device.device)
        return device

    def request_passkey(self, phone: Phone, qr: str) -> dict[str, object]:
        """Ask the companion showing ``qr`` for ``phone``'s passkey instead of linking it.

        What WhatsApp does when an account that protects linking with a passkey scans a
        QR code: the companion gets ``<notification type="passkey_prologue_request">``
        with the WebAuthn request options (JSON, binary fields unpadded base64url) and
        must answer with an assertion (``passkey_prologue``). Its QR refs are withdrawn:
        the pairing now waits for the passkey. Returns the options sent.
        """
        conn, _ = self._showing(qr)
        for ref in [r for r, c in self._refs.items() if c is conn]:
            del self._refs[ref]
        options: dict[str, object] = {
            "challenge": _b64url(secrets.token_bytes(32)),
            "timeout": 60000,
            "rpId": PASSKEY_RP_ID,
            "allowCredentials": [
                {
                    "id": _b64url(phone.lid.encode()),
                    "type": "public-key",
                    "transports": ["internal", "hybrid"],
                }
            ],
            "userVerification": "required",
            "extensions": {},
        }
        conn.send(
            Node(
                "notification",
                {
                    "from": SERVER_JID,
                    "type": "passkey_prologue_request",
                    "id": self.net.next_id(),
                    "t": now(),
                },
                [Node("passkey_request_options", {}, json.dumps(options).encode())],
            )
        )
        log.info("phone %s scanned a QR: asking the companion for a passkey", phone.phone)
        return options

    def _showing(self, qr: str) -> tuple[Connection, QRData]:
        """The connected companion that shows ``qr``, its keys checked against the QR's."""
        data = QRData.parse(qr)
        conn = self._refs.get(data.ref)
        if conn is None or conn.closed:
            raise ScanError("QR_NOT_FOUND", "no connected companion shows this QR code", 404)
        if (
            data.noise_pub != conn.client_static
            or data.identity_pub != self._registrations[conn].identity_pub
        ):
            raise ScanError("QR_MISMATCH", "QR keys do not match the companion's connection")
        return conn, data

    def registration(self, conn: Connection) -> Registration | None:
        """The registration data of a companion that is not paired yet."""
        return self._registrations.get(conn)

    def link(self, conn: Connection, phone: Phone, adv_secret: bytes) -> Device:
        """Register the companion on ``conn`` as ``phone``'s next device; send pair-success.

        ``adv_secret`` is the secret the companion and the phone share (from the QR code,
        or derived during pairing-code login); it keys the HMAC the companion checks.
        """
        registration = self._registrations[conn]
        for ref in [r for r, c in self._refs.items() if c is conn]:
            del self._refs[ref]
        device = self.net.store.add_device(
            phone.phone,
            noise_pub=conn.client_static,
            identity_pub=registration.identity_pub,
            registration_id=registration.registration_id,
            skey=registration.skey,
            platform=registration.platform,
        )
        container = PrimaryPhone(phone).link_companion(
            device.device, registration.identity_pub, adv_secret
        )
        iq_id = self.net.next_id()
        self._linking[conn] = (device, iq_id)
        identity = Node("device-identity", {"key-index": str(device.device)}, container)
        addresses = Node(
            "device",
            {"jid": JID.pn(phone.phone, device.device), "lid": JID.lid(phone.lid, device.device)},
        )
        conn.send(
            Node(
                "iq",
                {"from": SERVER_JID, "type": "set", "id": iq_id, "xmlns": "md", "t": now()},
                [
                    Node(
                        "pair-success",
                        {},
                        [identity, Node("platform", {"name": "android"}), addresses],
                    )
                ],
            )
        )
        return device

    def handle_reply(self, conn: Connection, node: Node) -> bool:
        """Handle the companion's answer to ``pair-success``; False if ``node`` is not one."""
        linking = self._linking.get(conn)
        if linking is None or node.attr("id") != linking[1]:
            return False
        device, _ = linking
        del self._linking[conn]
        sign = node.path("pair-device-sign", "device-identity")
        if node.attr("type") != "result" or sign is None:
            log.warning("companion rejected pair-success: %s", node)
            self.net.store.delete_device(device.phone, device.device)
            conn.end(Node("stream:error", {"code": "500"}))
            return True
        phone = self.net.store.phone(device.phone)
        if phone is not None and not PrimaryPhone(phone).verify_companion_signature(
            sign.bytes_content(), device.identity_pub
        ):
            log.warning("device %s:%d sent a bad device signature", device.phone, device.device)
        log.info("device %s:%d paired; asking it to reconnect", device.phone, device.device)
        if phone is not None:
            self.net.announce_devices(phone)
            share_app_state_key(self.net, phone, device)
        conn.end(Node("stream:error", {"code": "515"}))
        return True


def _b64url(data: bytes) -> str:
    """WebAuthn's encoding of binary fields in JSON: base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
