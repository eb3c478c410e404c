"""The fuzzers' built-in dictionary: generic HTTP knowledge only.

Header names real traffic carries and the query parameter names web fuzzing dictionaries start
with. Nothing here names a planted bug's trigger (``tests/fuzz/test_planted_bugs.py`` checks): the
words a filter looks for come from the filter itself (:mod:`emulator.fuzz.harvest`).
"""

from __future__ import annotations

__all__: list[str] = []  # public through emulator.fuzz.strategies

COMMON_HEADER_NAMES = (
    "accept", "accept-encoding", "authorization", "content-type", "content-length", "cookie", "user-agent",
    "x-forwarded-for", "x-request-id", "x-api-key", "host", "te", "grpc-timeout", "x-envoy-original-path",
    "cache-control", "set-cookie", "location", "server", "date", "etag", "transfer-encoding", "connection",
)  # fmt: skip
"""Names real traffic carries, mixed into generated maps."""

COMMON_QUERY_PARAMETERS = tuple(
    w.encode()
    for w in (
        "q", "page", "id", "limit", "offset", "sort", "filter", "fields", "format", "lang", "token", "key", "callback",
        "redirect", "next", "trace", "verbose", "test", "admin", "user", "version", "v", "cache", "utm_source",
    )
)  # fmt: skip
"""Query parameter names that web fuzzing dictionaries start with (cf. common header names)."""
