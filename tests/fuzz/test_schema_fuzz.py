"""Property tests of every request schema: the msgspec structs of ``gowa_py.models`` and
the GoWA operation structs of ``gowa_py.operations``.

- random JSON is either accepted or refused with ``msgspec.ValidationError``, never another
  exception (which the gateway would turn into a 500);
- a valid value (generated from the struct's own constraints) survives JSON encoding and
  decoding unchanged, so what the gateway validates is exactly what the worker gets.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gowa_py import models, operations
from gowa_py.gateway.gowa.routing import OPERATION_ROUTES
from tests.fuzz.explore import DERANDOMIZE

STRUCTS = sorted(
    (
        cls
        for module in (models, operations)
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, msgspec.Struct)
        and cls.__module__ == module.__name__
        and cls is not operations.Op
    ),
    key=lambda cls: cls.__qualname__,
)
FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=list(HealthCheck),
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _field_names(cls: type[msgspec.Struct]) -> list[str]:
    return [field.encode_name for field in mi.type_info(cls).fields]


def json_objects(cls: type[msgspec.Struct]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that use the struct's own field names (so validation goes deep), with
    random values, plus a few unknown keys."""
    names = st.sampled_from(_field_names(cls) or ["x"]) | st.text(max_size=6)
    return st.dictionaries(names, json_values, max_size=8)


def valid(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values that satisfy a msgspec type, constraints included."""
    match t:
        case mi.Metadata():
            return valid(t.type)
        case mi.NoneType():
            return st.none()
        case mi.BoolType():
            return st.booleans()
        case mi.IntType():
            low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**53))
            high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**53)
            return st.integers(low, high)
        case mi.FloatType():
            return st.floats(t.ge, t.le, allow_nan=False, allow_infinity=False)
        case mi.StrType() if t.pattern:
            return st.from_regex(t.pattern, fullmatch=True).filter(
                lambda s: (t.min_length or 0) <= len(s) <= (t.max_length or 10**9)
            )
        case mi.StrType():
            return st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 40, 40))
        case mi.BytesType():
            return st.binary(max_size=64)
        case mi.ListType():
            low = t.min_length or 0
            return st.lists(valid(t.item_type), min_size=low, max_size=max(low, 3))
        case mi.DictType():
            return st.dictionaries(valid(t.key_type), valid(t.value_type), max_size=3)
        case mi.LiteralType():
            return st.sampled_from(t.values)
        case mi.UnionType():
            return st.one_of([valid(x) for x in t.types])
        case mi.StructType():
            return valid_struct(t.cls)
        case mi.AnyType():
            return json_values
    raise TypeError(f"no strategy for {t!r}")


def valid_struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    fields = mi.type_info(cls).fields
    required = {f.name: valid(f.type) for f in fields if f.required}
    optional = {f.name: valid(f.type) for f in fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: cls.__qualname__)
@FUZZ
@given(data=st.data())
def test_random_json_is_accepted_or_refused_cleanly(cls, data):
    value = data.draw(json_values | json_objects(cls))
    for decode in (
        lambda: msgspec.convert(value, cls, strict=False),  # form and query values
        lambda: msgspec.json.decode(msgspec.json.encode(value), type=cls),  # JSON bodies
    ):
        with contextlib.suppress(msgspec.ValidationError):
            decode()


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: cls.__qualname__)
@FUZZ
@given(data=st.data())
def test_valid_values_round_trip(cls, data):
    value = data.draw(valid_struct(cls))
    encoded = msgspec.json.encode(value)
    assert msgspec.json.decode(encoded, type=cls) == value
    assert msgspec.convert(msgspec.to_builtins(value), cls) == value


def test_every_operation_struct_is_covered():
    assert {route.op for route in OPERATION_ROUTES} <= set(STRUCTS)
    assert {models.CreateSession, models.SessionConfigPatch} <= set(STRUCTS)


def _unbounded_ints(t: mi.Type, path: str) -> list[str]:
    """Integer fields a client could set beyond int64, which the IPC encoder refuses."""
    match t:
        case mi.IntType():
            low = t.ge if t.ge is not None else t.gt
            high = t.le if t.le is not None else t.lt
            fits = low is not None and high is not None and low >= -(2**63) and high < 2**63
            return [] if fits else [path]
        case mi.Metadata():
            return _unbounded_ints(t.type, path)
        case mi.UnionType():
            return [p for x in t.types for p in _unbounded_ints(x, path)]
        case mi.ListType():
            return _unbounded_ints(t.item_type, path + "[]")
        case mi.DictType():
            return _unbounded_ints(t.value_type, path + "{}")
    return []


def test_every_integer_field_fits_the_ipc_encoding():
    """Found by schemathesis: ``GET /chats?offset=<huge>`` passed validation and then
    crashed the msgpack encoding of the worker command with a 500."""
    unbounded = [
        p
        for cls in STRUCTS
        for f in mi.type_info(cls).fields
        for p in _unbounded_ints(f.type, f"{cls.__qualname__}.{f.name}")
    ]
    assert unbounded == []


recipient_parts = st.sampled_from(
    [
        "1555",
        "0",
        "\u0661\u0662",
        "@",
        ":",
        "99",
        "x",
        "s.whatsapp.net",
        "g.us",
        "lid",
        "-",
        "+",
        " ",
    ]
)


@FUZZ
@given(value=st.text(max_size=24) | st.lists(recipient_parts, max_size=8).map("".join))
def test_a_recipient_the_gateway_accepts_is_one_the_worker_can_address(value: str) -> None:
    """No recipient passes the gateway's check only to be refused by whatsmeow (a 502):
    what the gateway accepts, the worker parses into a JID of ASCII digits on a known
    server, or refuses itself as INVALID_JID (400)."""
    from workers.errors import SessionError
    from workers.jid import parse_jid

    try:
        msgspec.convert({"phone": value, "message": "m"}, operations.SendMessage)
    except msgspec.ValidationError:
        return
    try:
        jid = parse_jid(value)
    except SessionError as exc:
        assert exc.code == "INVALID_JID"
        return
    assert jid.User.isascii() and jid.User.replace("-", "").isdigit(), jid
    assert (
        jid.Server
        in {
            "s.whatsapp.net",
            "c.us",
            "lid",
            "hosted",
            "hosted.lid",
            "g.us",
            "newsletter",
            "broadcast",
        }
        or jid.User == "status"
    ), jid
