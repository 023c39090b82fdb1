"""neonize's generated protobuf modules, loaded without importing the ``neonize`` package.

``import neonize.proto...`` runs ``neonize/__init__``, which loads the Go shared library
and starts a Go runtime: pointless weight for a server that only needs a few message
types. The ``_pb2`` files with no imports besides ``google.protobuf`` are loaded straight
from neonize's installation directory; the end-to-end message types, which import their
siblings, by name from that directory. If neonize's own copies
are already loaded in this process they are reused (one descriptor pool, one class).
"""

from __future__ import annotations

import importlib
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


def _load_with_imports(relpath: str) -> ModuleType:
    """A module that imports its siblings by top-level name (``from waCommon import ...``).

    These need neonize's proto directory on ``sys.path``, as ``neonize.proto`` itself
    arranges; protobuf accepts the same file registered again under its other name.
    """
    proto = str(neonize_library_path().parent / "proto")
    if proto not in sys.path:
        sys.path.append(proto)
    return importlib.import_module(relpath.replace("/", "."))


_wa6 = _load("waWa6/WAWebProtobufsWa6_pb2")
_cert = _load("waCert/WACert_pb2")
_adv = _load("waAdv/WAAdv_pb2")
_sync = _load("waServerSync/WAServerSync_pb2")
_reg = _load("waCompanionReg/WAWebProtobufsCompanionReg_pb2")

HandshakeMessage = _wa6.HandshakeMessage
ClientPayload = _wa6.ClientPayload
CertChain = _cert.CertChain
ADVDeviceIdentity = _adv.ADVDeviceIdentity
ADVSignedDeviceIdentity = _adv.ADVSignedDeviceIdentity
ADVSignedDeviceIdentityHMAC = _adv.ADVSignedDeviceIdentityHMAC
ADVKeyIndexList = _adv.ADVKeyIndexList
ADVSignedKeyIndexList = _adv.ADVSignedKeyIndexList
DeviceProps = _reg.DeviceProps
SyncdPatch = _sync.SyncdPatch
SyncdVersion = _sync.SyncdVersion
SyncdMutation = _sync.SyncdMutation
SyncdRecord = _sync.SyncdRecord
SyncdIndex = _sync.SyncdIndex
SyncdValue = _sync.SyncdValue
KeyId = _sync.KeyId
_e2e = _load_with_imports("waE2E/WAWebProtobufsE2E_pb2")
_action = _load_with_imports("waSyncAction/WAWebProtobufSyncAction_pb2")
SyncActionData = _action.SyncActionData
SyncActionValue = _action.SyncActionValue
Message = _e2e.Message
ProtocolMessage = _e2e.ProtocolMessage
AppStateSyncKey = _e2e.AppStateSyncKey
AppStateSyncKeyShare = _e2e.AppStateSyncKeyShare
AppStateSyncKeyId = _e2e.AppStateSyncKeyId
AppStateSyncKeyData = _e2e.AppStateSyncKeyData
AppStateSyncKeyFingerprint = _e2e.AppStateSyncKeyFingerprint
