"""How input pairs become a header map's entries (``HeaderMap.__init__``, one pass over them).

Pseudo-headers go first, each group in input order; a request's ``host`` and a second
``:authority`` merge into the one ``:authority`` slot (Envoy's codec appends with a comma).
"""

from __future__ import annotations

import pytest

from emulator import HeaderMap

CASES = [
    # (kind, input, entries)
    ("request", [(":method", "GET"), (":path", "/"), ("a", "1")], [(b":method", b"GET"), (b":path", b"/"), (b"a", b"1")]),
    ("request", [("a", "1"), (":method", "GET"), ("B", "2"), (":path", "/")], [(b":method", b"GET"), (b":path", b"/"), (b"a", b"1"), (b"b", b"2")]),
    ("request", [(":authority", "x"), ("a", "1"), ("Host", "y")], [(b":authority", b"x,y"), (b"a", b"1")]),
    ("request", [("a", "1"), ("host", "y")], [(b":authority", b"y"), (b"a", b"1")]),
    ("request", [(":authority", "x"), (":authority", "z"), (":path", "/")], [(b":authority", b"x,z"), (b":path", b"/")]),
    ("response", [("host", "y"), (":status", "200")], [(b":status", b"200"), (b"host", b"y")]),
    ("response", [(":status", "200"), ("x", "1"), ("x", "2")], [(b":status", b"200"), (b"x", b"1"), (b"x", b"2")]),
    ("plain", [], []),
]


@pytest.mark.parametrize(("kind", "given", "entries"), CASES)
def test_input_pairs_become_entries(kind: str, given: list[tuple[str, str]], entries: list[tuple[bytes, bytes]]) -> None:
    assert HeaderMap(given, kind=kind).pairs() == entries


def test_text_names_are_lowered_the_same_when_remembered_and_the_memory_stays_bounded() -> None:
    from emulator.http import headers

    given = [("X-Mixed-Case", "v"), ("ÄRGER", "ü"), ("x-mixed-case", "w")]
    expected = [(b"x-mixed-case", b"v"), ("ÄRGER".encode().lower(), "ü".encode()), (b"x-mixed-case", b"w")]
    assert headers.normalize_headers(given) == expected  # the first time: encoded and lowered
    assert headers.normalize_headers(given) == expected  # again: from the remembered names
    for i in range(headers._NAMES_MAX + 10):  # a fuzzer's stream of new names
        assert headers.normalize_headers([(f"N-{i}", "")]) == [(f"n-{i}".encode(), b"")]
    assert len(headers._NAMES) <= headers._NAMES_MAX
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate fails as before, and is not remembered
        headers.normalize_headers([("bad\udc80", "v")])
    assert "bad\udc80" not in headers._NAMES
