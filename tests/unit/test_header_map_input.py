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
