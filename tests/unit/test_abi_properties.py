import datetime as dt
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abi import UInt64, decode_path, decode_value, encode_path, encode_value

segment = st.binary(min_size=1, max_size=20).filter(lambda b: b"\0" not in b)


@given(st.lists(segment, max_size=6), st.booleans())
def test_path_round_trip_in_rust_and_cpp_forms(segments, trailing):
    assert decode_path(encode_path(segments, trailing_nul=trailing)) == tuple(segments)


def test_dotted_segment_is_not_split():
    assert decode_path(b"request.path") == (b"request.path",)
    assert decode_path(b"request\0path\0") == (b"request", b"path")


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        ("abc", b"abc"),
        (b"\x00\xff", b"\x00\xff"),
        (True, b"\x01"),
        (False, b"\x00"),
        (-2, struct.pack("<q", -2)),
        (UInt64(2**64 - 1), b"\xff" * 8),
        (1.5, struct.pack("<d", 1.5)),
        (dt.timedelta(seconds=2), struct.pack("<q", 2_000_000_000)),
        (dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc), struct.pack("<q", 1_000_000_000)),
    ],
)
def test_scalar_encodings_follow_envoy(value, raw):
    assert encode_value(value) == raw


def test_map_and_list_encode_as_pairs_recursively():
    from abi import decode_pairs

    assert decode_pairs(encode_value({"a": "x", "n": 1})) == [(b"a", b"x"), (b"n", struct.pack("<q", 1))]
    assert decode_pairs(encode_value(["p", "q"])) == [(b"p", b""), (b"q", b"")]


def test_unserializable_value_is_a_type_error():
    with pytest.raises(TypeError, match="SerializationFailure"):
        encode_value(object())


@given(st.integers(-(2**63), 2**63 - 1))
def test_int_round_trip(n):
    assert decode_value(encode_value(n), "int") == n


@given(st.floats(allow_nan=True))
def test_double_round_trip(x):
    back = decode_value(encode_value(x), "double")
    assert back == x or (math.isnan(x) and math.isnan(back))


@given(st.dictionaries(st.text(max_size=10).filter(lambda s: "\0" not in s), st.text(max_size=10).filter(lambda s: "\0" not in s), max_size=8))
def test_string_map_round_trip(d):
    assert decode_value(encode_value(d), "map") == {k.encode(): v.encode() for k, v in d.items()}


def test_decode_rejects_wrong_width():
    with pytest.raises(ValueError, match="8 bytes"):
        decode_value(b"\x01", "int")
