import pytest

from gowa_py.ids import InvalidSessionId, check_session_id, is_valid_session_id


@pytest.mark.parametrize("value", ["a", "sales", "A-1_b", "0", "x" * 64, "default"])
def test_valid_ids(value):
    assert check_session_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "-a", "_a", "../etc", "a/b", "a b", "a\n", "x" * 65, ".", "..", "é", "a.b", None, 5],
)
def test_invalid_ids_never_pass(value):
    assert not is_valid_session_id(value)
    with pytest.raises(InvalidSessionId):
        check_session_id(value)
