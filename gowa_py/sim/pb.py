"""neonize's generated protobuf modules, loaded without importing the ``neonize`` package.

``import neonize.proto...`` runs ``neonize/__init__``, which loads the Go shared library
and starts a Go runtime: pointless weight for a server that only needs four message
types. The few ``_pb2`` files used here have no imports besides ``google.protobuf``, so
they are loaded straight from neonize's installation directory. If neonize's own copies
are already loaded in this process they are reused (one descriptor pool, one class).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from .tokens import neonize_library_path


def _load(relpath: str) -> ModuleType:
    dotted = "neonize.proto." + relpath.replace("/", ".")
    if dotted in sys.modules:
        return sys.modules[dotted]
    private = f"{__name__}._{relpath.replace('/', '_')}"
    if private in sys.modules:
        return sys.modules[private]
    path = neonize_library_path().parent / "proto" / f"{relpath}.py"
    spec = importlib.util.spec_from_file_location(private, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[private] = module
    spec.loader.exec_module(module)
    return module


_wa6 = _load("waWa6/WAWebProtobufsWa6_pb2")
_cert = _load("waCert/WACert_pb2")
_adv = _load("waAdv/WAAdv_pb2")
_reg = _load("waCompanionReg/WAWebProtobufsCompanionReg_pb2")

HandshakeMessage = _wa6.HandshakeMessage
ClientPayload = _wa6.ClientPayload
CertChain = _cert.CertChain
ADVDeviceIdentity = _adv.ADVDeviceIdentity
ADVSignedDeviceIdentity = _adv.ADVSignedDeviceIdentity
ADVSignedDeviceIdentityHMAC = _adv.ADVSignedDeviceIdentityHMAC
DeviceProps = _reg.DeviceProps
