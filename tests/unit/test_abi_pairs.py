import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abi import PAIRS_MAX_BYTES, PAIRS_MAX_COUNT, PairsError, decode_pairs, decode_pairs_strict, encode_pairs
from abi.pairs import encoded_size

pair = st.tuples(st.binary(max_size=40), st.binary(max_size=40))


def test_spec_example_bytes():
    # abi-spec.md §4.2 (with the spec's 0x49/0x50 typos corrected)
    assert encode_pairs([("a", "1"), ("b", "22")]) == bytes.fromhex("0200000001000000010000000100000002000000610031006200323200")


@given(st.lists(pair, max_size=30))
def test_round_trip_keeps_order_repeats_and_binary(pairs):
    raw = encode_pairs(pairs)
    assert len(raw) == encoded_size(pairs)
    assert decode_pairs(raw) == pairs


@pytest.mark.parametrize("raw", [b"", b"\0", b"\0\0\0"])
def test_short_buffers_are_empty(raw):
    assert decode_pairs(raw) == []


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (struct.pack("<III", 1, 5, 0) + b"ab\0\0", "runs past the end"),
        (struct.pack("<III", 1, 1, 1) + b"aXb\0", "NUL"),
        (encode_pairs([("a", "b")]) + b"!", "trailing"),
        (struct.pack("<I", PAIRS_MAX_COUNT + 1) + b"\0" * 8 * (PAIRS_MAX_COUNT + 1), "limit"),
        (struct.pack("<I", 3), "sizes"),
    ],
)
def test_malformed_is_empty_like_cpp_host_and_strict_says_why(raw, problem):
    assert decode_pairs(raw) == []
    with pytest.raises(PairsError, match=problem):
        decode_pairs_strict(raw)


def test_byte_limit_is_cpp_hosts():
    big = encode_pairs([("k", "v" * (PAIRS_MAX_BYTES - 14))])
    assert len(big) == PAIRS_MAX_BYTES + 1
    assert decode_pairs(big) == []
    ok = encode_pairs([("k", "v" * (PAIRS_MAX_BYTES - 15))])
    assert decode_pairs(ok) == [(b"k", b"v" * (PAIRS_MAX_BYTES - 15))]


def test_max_count_is_accepted():
    pairs = [(b"k", b"")] * PAIRS_MAX_COUNT
    assert decode_pairs(encode_pairs(pairs)) == pairs
