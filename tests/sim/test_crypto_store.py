"""Noise handshake, certificate chain, phone signatures, persistence, worker hooks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gowa_py.sim import redirect as sandbox
from gowa_py.sim.certs import XEdSigner, load_ca, load_root_key, noise_cert_chain, xeddsa_verify
from gowa_py.sim.noise import (
    CONN_HEADER,
    FrameCipher,
    NoiseError,
    NoiseResponder,
    SymmetricState,
    dh,
    x25519_public,
)
from gowa_py.sim.pb import (
    ADVSignedDeviceIdentity,
    ADVSignedDeviceIdentityHMAC,
    CertChain,
    ClientPayload,
    HandshakeMessage,
)
from gowa_py.sim.phone import ACCOUNT_SIGNATURE_PREFIX, PrimaryPhone
from gowa_py.sim.store import SignedPreKey, Store

ROOT = Path(__file__).resolve().parents[2]


def verify_chain(chain_bytes: bytes, root_key: bytes, server_static: bytes) -> None:
    """whatsmeow's ``verifyServerCert`` and ``checkCertValidity`` (handshake.go), step by step."""
    chain = CertChain.FromString(chain_bytes)
    inter, leaf = chain.intermediate, chain.leaf
    assert len(inter.signature) == 64 and len(leaf.signature) == 64
    assert xeddsa_verify(root_key, inter.details, inter.signature)
    inter_details = CertChain.NoiseCertificate.Details.FromString(inter.details)
    assert inter_details.issuerSerial == 0 and len(inter_details.key) == 32
    assert xeddsa_verify(inter_details.key, leaf.details, leaf.signature)
    leaf_details = CertChain.NoiseCertificate.Details.FromString(leaf.details)
    now = time.time()
    for details in (inter_details, leaf_details):
        assert details.notBefore <= now <= details.notAfter
    assert leaf_details.issuerSerial == inter_details.serial
    assert leaf_details.key == server_static


def test_xeddsa_signatures_verify_like_libsignal() -> None:
    signer = XEdSigner()
    for i in range(20):
        message = os.urandom(i * 7)
        signature = signer.sign(message)
        assert xeddsa_verify(signer.public, message, signature)
        assert not xeddsa_verify(signer.public, message + b"x", signature)
    assert XEdSigner(signer.seed).public == signer.public


def test_cert_chain_verifies_with_root_key() -> None:
    root, static = XEdSigner(), X25519PrivateKey.generate()
    chain = noise_cert_chain(root, XEdSigner(), x25519_public(static))
    verify_chain(chain, root.public, x25519_public(static))
    with pytest.raises(AssertionError):
        verify_chain(chain, XEdSigner().public, x25519_public(static))


def test_noise_handshake_with_client_steps() -> None:
    """A Python initiator doing exactly whatsmeow's client steps talks to the responder."""
    root, server_static = XEdSigner(), X25519PrivateKey.generate()
    chain = noise_cert_chain(root, XEdSigner(), x25519_public(server_static))
    responder = NoiseResponder(CONN_HEADER, server_static, chain)

    client = SymmetricState(CONN_HEADER)
    ephemeral, noise_key = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    client.mix_hash(x25519_public(ephemeral))
    hello = HandshakeMessage()
    hello.clientHello.ephemeral = x25519_public(ephemeral)
    server_hello = HandshakeMessage.FromString(
        responder.server_hello(hello.SerializeToString())
    ).serverHello
    client.mix_hash(server_hello.ephemeral)
    client.mix_key(dh(ephemeral, server_hello.ephemeral))
    static = client.decrypt(server_hello.static)
    client.mix_key(dh(ephemeral, static))
    verify_chain(client.decrypt(server_hello.payload), root.public, static)

    finish = HandshakeMessage()
    finish.clientFinish.static = client.encrypt(x25519_public(noise_key))
    client.mix_key(dh(noise_key, server_hello.ephemeral))
    finish.clientFinish.payload = client.encrypt(
        ClientPayload(username=15550000001, device=3, passive=True).SerializeToString()
    )
    result = responder.client_finish(finish.SerializeToString())
    assert result.client_static == x25519_public(noise_key)
    assert (result.payload.username, result.payload.device) == (15550000001, 3)

    client_write, client_read = client.split()
    to_server, from_server = FrameCipher(client_write), FrameCipher(client_read)
    for i in range(3):
        assert result.reader.decrypt(to_server.encrypt(b"ping %d" % i)) == b"ping %d" % i
        assert from_server.decrypt(result.writer.encrypt(b"pong %d" % i)) == b"pong %d" % i
    with pytest.raises(NoiseError):
        result.reader.decrypt(b"garbage" * 4)


@pytest.mark.parametrize("header", [b"WA\x06\x01", b"WA\x06\x04", b"WA\x05\x03", b"XX\x06\x03"])
def test_responder_rejects_unknown_header(header: bytes) -> None:
    with pytest.raises(NoiseError):
        NoiseResponder(header, X25519PrivateKey.generate(), b"")


def test_phone_links_companion_with_valid_signatures(tmp_path: Path) -> None:
    store = Store(tmp_path / "sim.db")
    phone = store.create_phone("15550000001", "Alice", XEdSigner().seed)
    companion = X25519PrivateKey.generate()
    identity, adv_secret = x25519_public(companion), os.urandom(32)
    container = ADVSignedDeviceIdentityHMAC.FromString(
        PrimaryPhone(phone).link_companion(1, identity, adv_secret)
    )
    signed = ADVSignedDeviceIdentity.FromString(container.details)
    assert xeddsa_verify(
        signed.accountSignatureKey,
        ACCOUNT_SIGNATURE_PREFIX + signed.details + identity,
        signed.accountSignature,
    )


def test_store_persists_devices_prekeys_and_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "sim.db")
    phone = store.create_phone("15550000001", "Alice", b"s" * 32)
    device = store.add_device(
        "15550000001",
        noise_pub=b"n" * 32,
        identity_pub=b"i" * 32,
        registration_id=7,
        skey=SignedPreKey(1, b"p" * 32, b"g" * 64),
        platform="Neonize",
    )
    store.add_prekeys("15550000001", device.device, [(5, b"a" * 32), (3, b"b" * 32)])
    store.enqueue("15550000001", device.device, b"stanza")
    store.close()

    reopened = Store(tmp_path / "sim.db")
    assert reopened.phone("15550000001") == phone
    assert reopened.phone_by_lid(phone.lid) == phone
    assert reopened.device("15550000001", 1) == device
    assert reopened.take_prekey("15550000001", 1) == (3, b"b" * 32)
    assert reopened.prekey_count("15550000001", 1) == 1
    assert [s for _, s, _ in reopened.queued("15550000001", 1)] == [b"stanza"]
    second = reopened.add_device(
        "15550000001",
        noise_pub=b"m" * 32,
        identity_pub=b"j" * 32,
        registration_id=8,
        skey=SignedPreKey(1, b"p" * 32, b"g" * 64),
        platform="",
    )
    assert second.device == 2
    reopened.mark_unlinked("15550000001", 1)
    assert [d.device for d in reopened.devices("15550000001")] == [2]
    assert reopened.queued("15550000001", 1) == []


def test_key_material_is_persistent(tmp_path: Path) -> None:
    assert load_root_key(tmp_path).public == load_root_key(tmp_path).public
    assert load_ca(tmp_path)[0] == load_ca(tmp_path)[0]
    assert (tmp_path / "root.key").stat().st_mode & 0o077 == 0


def test_trust_ca_sets_ssl_cert_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    load_ca(tmp_path)
    sandbox.trust_ca(str(tmp_path / "ca.pem"))
    assert os.environ["SSL_CERT_FILE"] == str(tmp_path / "ca.pem")
    with pytest.raises(FileNotFoundError):
        sandbox.trust_ca(str(tmp_path / "missing.pem"))


def _in_fresh_process(code: str) -> str:
    """Run ``code`` in a new interpreter and return what it printed."""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_patch_root_key_requires_loaded_library() -> None:
    """Patching before neonize's library is loaded is refused, not a crash. A fresh process:
    other tests of a full run load neonize into this one, and it cannot be unloaded."""
    code = (
        "import sys\n"
        "from gowa_py.sim import redirect as sandbox\n"
        "assert 'neonize._binder' not in sys.modules\n"
        "try:\n"
        "    sandbox.patch_root_key(bytes(32))\n"
        "except sandbox.SandboxPatchError as exc:\n"
        "    print('refused:', exc)\n"
    )
    assert "refused: the neonize library is not loaded" in _in_fresh_process(code)


def test_patch_root_key_canary_in_fresh_process() -> None:
    """The installed neonize build holds WACertPubKey exactly once, and patching works."""
    code = (
        "import ctypes, neonize._binder\n"
        "from gowa_py.sim import redirect as sandbox\n"
        "hits, lib = sandbox._find_all(sandbox.WA_CERT_PUB_KEY)\n"
        "assert len(hits) == 1, hits\n"
        "key = bytes(range(32))\n"
        "sandbox.patch_root_key(key); sandbox.patch_root_key(key)\n"
        "assert ctypes.string_at(hits[0], 32) == key\n"
        "try:\n"
        "    sandbox.patch_root_key(bytes(32))\n"
        "except sandbox.SandboxPatchError as exc:\n"
        "    print('refused:', exc)\n"
    )
    refusal = "refused: WACertPubKey found 0 times in neonize-linux-amd64.so"
    assert refusal in _in_fresh_process(code)


def test_held_stanzas_stay_until_acknowledged(tmp_path: Path) -> None:
    store = Store(tmp_path / "sim.db")
    store.create_phone("15550000001", "Alice", b"s" * 32)
    store.add_device(
        "15550000001",
        noise_pub=b"n" * 32,
        identity_pub=b"i" * 32,
        registration_id=7,
        skey=SignedPreKey(1, b"p" * 32, b"g" * 64),
        platform="Neonize",
    )
    store.enqueue("15550000001", 1, b"msg", "message", "M1")
    store.enqueue("15550000001", 1, b"rcpt", "receipt", "M0")
    store.acknowledge("15550000001", 1, "message", ["M0"])  # wrong kind: nothing released
    assert [(s, held) for _, s, held in store.queued("15550000001", 1)] == [
        (b"msg", True),
        (b"rcpt", True),
    ]
    store.acknowledge("15550000001", 1, "message", ["M1"])
    assert [s for _, s, _ in store.queued("15550000001", 1)] == [b"rcpt"]
    seqs = [seq for seq, _, _ in store.queued("15550000001", 1)]
    for _ in range(3):
        store.count_attempt(seqs, limit=3)
    assert store.queued("15550000001", 1) == []
