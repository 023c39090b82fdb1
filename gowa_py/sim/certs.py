"""Key material: the TLS CA for web.whatsapp.com and the Noise certificate chain.

Two independent trust paths must be satisfied for whatsmeow to talk to the sandbox:

* TLS: Go verifies the websocket's certificate against the system roots, so the sandbox
  keeps its own CA (``ca.pem``/``ca.key``) that workers trust through ``SSL_CERT_FILE``.
* Noise: the handshake payload is a root → intermediate → leaf chain whose intermediate
  must be signed by whatsmeow's ``WACertPubKey``. Workers overwrite that variable with
  the sandbox root key (``root.key`` persists its seed), see :mod:`.redirect`.

libsignal verifies XEdDSA-style signatures against Montgomery (Curve25519) keys. A plain
Ed25519 signature is accepted if the published key is the Montgomery form of the Ed25519
key and the Edwards sign bit is carried in the signature's top bit (libsignal's
``ecc.VerifySignature``).
"""

from __future__ import annotations

import datetime
import os
import ssl
import time
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from .pb import CertChain

_P = 2**255 - 19
TLS_HOSTNAMES = ("web.whatsapp.com", "*.whatsapp.net", "*.whatsapp.com")
_RAW = serialization.Encoding.Raw


def edwards_to_montgomery(ed_public: bytes) -> bytes:
    """Montgomery u-coordinate of an Ed25519 public key: u = (1 + y) / (1 - y)."""
    y = int.from_bytes(ed_public, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % _P, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def montgomery_to_edwards(mont_public: bytes, sign_bit: int) -> bytes:
    """Edwards encoding of a Montgomery key: y = (u - 1) / (u + 1), with the given sign bit."""
    u = int.from_bytes(mont_public, "little") & ((1 << 255) - 1)
    y = (u - 1) * pow((u + 1) % _P, _P - 2, _P) % _P
    out = bytearray(y.to_bytes(32, "little"))
    out[31] |= sign_bit & 0x80
    return bytes(out)


def xeddsa_verify(mont_public: bytes, message: bytes, signature: bytes) -> bool:
    """libsignal's ``VerifySignature`` (the check whatsmeow applies to every signature)."""
    if len(mont_public) != 32 or len(signature) != 64:
        return False
    ed_public = montgomery_to_edwards(mont_public, signature[63])
    sig = bytearray(signature)
    sig[63] &= 0x7F
    try:
        Ed25519PublicKey.from_public_bytes(ed_public).verify(bytes(sig), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class XEdSigner:
    """An Ed25519 key used as a Curve25519 signing key (libsignal-compatible signatures)."""

    def __init__(self, seed: bytes | None = None) -> None:
        self._key = (
            Ed25519PrivateKey.from_private_bytes(seed) if seed else Ed25519PrivateKey.generate()
        )
        self._ed_public = self._key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
        #: The 32-byte Montgomery public key, as published on the wire.
        self.public = edwards_to_montgomery(self._ed_public)

    @property
    def seed(self) -> bytes:
        return self._key.private_bytes(
            _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def sign(self, message: bytes) -> bytes:
        sig = bytearray(self._key.sign(message))
        sig[63] |= self._ed_public[31] & 0x80
        return bytes(sig)


def noise_cert_chain(root: XEdSigner, intermediate: XEdSigner, server_static: bytes) -> bytes:
    """Serialized ``waCert.CertChain`` binding ``server_static`` to ``root``.

    The intermediate omits ``issuerSerial`` (whatsmeow requires 0); validity windows are
    always set because a missing ``notAfter`` reads as 0, i.e. expired.
    """
    now = int(time.time())
    inter = CertChain.NoiseCertificate.Details(
        serial=1, key=intermediate.public, notBefore=now - 86400, notAfter=now + 365 * 86400
    ).SerializeToString()
    leaf = CertChain.NoiseCertificate.Details(
        serial=2,
        issuerSerial=1,
        key=server_static,
        notBefore=now - 86400,
        notAfter=now + 365 * 86400,
    ).SerializeToString()
    chain = CertChain(
        leaf=CertChain.NoiseCertificate(details=leaf, signature=intermediate.sign(leaf)),
        intermediate=CertChain.NoiseCertificate(details=inter, signature=root.sign(inter)),
    )
    return chain.SerializeToString()


def write_private(path: Path, data: bytes) -> None:
    """Write a key file only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def load_root_key(data_dir: Path) -> XEdSigner:
    """The persistent Noise root key (``root.key`` holds the 32-byte Ed25519 seed)."""
    path = data_dir / "root.key"
    if path.exists():
        return XEdSigner(path.read_bytes())
    signer = XEdSigner()
    write_private(path, signer.seed)
    return signer


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def load_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The persistent TLS CA (``ca.pem`` + ``ca.key``), created on first use."""
    cert_path, key_path = data_dir / "ca.pem", data_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC key")
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = _name("gowa-py sandbox CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def tls_server_context(data_dir: Path) -> ssl.SSLContext:
    """Server context for the intercepted web.whatsapp.com TLS (HTTP/1.1 only: no ALPN h2).

    The leaf is issued fresh at every start (and written next to the CA only because
    ``ssl`` loads certificates from files).
    """
    ca_cert, ca_key = load_ca(data_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(TLS_HOSTNAMES[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(h) for h in TLS_HOSTNAMES]), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_path, key_path = data_dir / "tls-leaf.pem", data_dir / "tls-leaf.key"
    leaf_path.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(leaf_path, key_path)
    return ctx
