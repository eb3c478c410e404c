"""The fuzzer's dictionary: printable strings of a wasm module's data segments, cut into header-name
and value words, so generated traffic reaches the headers a filter looks for without being told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..host import ModuleSource

__all__ = ["Vocabulary", "data_segments", "harvest_strings", "host_call_vocabulary", "module_vocabulary"]


def _read_wasm(module: ModuleSource) -> bytes:
    if isinstance(module, bytes | bytearray):
        return bytes(module)
    return Path(module).read_bytes()


def data_segments(module: ModuleSource) -> list[bytes]:
    """The bytes of every data segment of a wasm module (active and passive)."""
    from ..vm.module import parse_module

    data = _read_wasm(module)
    return [data[start:end] for start, end in parse_module(data).data_segments]


_SPLIT = re.compile(rb"[\s\"'=<>,;(){}\[\]|\\`]+")
_NAME_LIKE = re.compile(r"^:?[a-z0-9][a-z0-9_.-]*[a-z0-9]$")


def harvest_strings(module: ModuleSource, *, min_len: int = 3, max_len: int = 64, limit: int = 4096) -> list[str]:
    """Printable strings of the module's data segments, cut into dictionary words.

    Runs of printable ASCII (and of UTF-16 ASCII, as AssemblyScript stores strings) are split at
    whitespace and punctuation, and before every ``x-`` (SDKs
    such as Rust's store string literals back to back, so ``x-denyx-pause`` holds two names).
    Words keep their first-seen order; at most ``limit``.
    """
    seen: dict[str, None] = {}
    for seg in data_segments(module):
        runs = re.findall(rb"[\x20-\x7e]{%d,}" % min_len, seg)
        # UTF-16 (AssemblyScript); a segment loses its trailing zero bytes, so the last character may lack its \0
        wide = re.findall(rb"(?:[\x20-\x7e]\x00){%d,}(?:[\x20-\x7e]\Z)?" % (min_len - 1), seg)
        runs += [(r + b"\0" * (len(r) % 2)).decode("utf-16-le").encode() for r in wide]
        for run in runs:
            for piece in _SPLIT.split(run):
                for word in re.split(rb"(?=x-)", piece):
                    w = word.decode()
                    w = w.rstrip(":.") if w.startswith(":") else w.strip(":.-_/")
                    if min_len <= len(w) <= max_len and w not in seen:
                        seen[w] = None
                        if len(seen) >= limit:
                            return list(seen)
    return list(seen)


@dataclass
class Vocabulary:
    """Dictionary words for header names and values."""

    names: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def merged(self, other: Vocabulary) -> Vocabulary:
        """Both vocabularies, ``other``'s words first, without repeats."""
        return Vocabulary(list(dict.fromkeys([*other.names, *self.names])), list(dict.fromkeys([*other.values, *self.values])))


def module_vocabulary(module: ModuleSource, *, max_names: int = 256, max_values: int = 256) -> Vocabulary:
    """Header-name-like words (lower-case tokens; hyphenated and pseudo-header ones first) and
    short value words harvested from the module's data segments."""
    words = harvest_strings(module)
    names = [w for w in words if _NAME_LIKE.match(w) and len(w) <= 40]
    names.sort(key=lambda w: 0 if ("-" in w or w.startswith(":")) else 1)
    values = [w for w in words if len(w) <= 32]
    return Vocabulary(names[:max_names], values[:max_values])


# host calls whose key argument names a header the filter looks at
_HEADER_KEY_CALLS = ("proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value")


def host_call_vocabulary(trace: Any) -> Vocabulary:
    """Words the filter itself asked the host for, read from a host-call trace: the header names it
    looked up, added, replaced or removed (names), and the values it wrote (values).

    These come from the module's own behaviour on the seed traffic, so a header the filter checks
    is in the dictionary whatever its string literal looks like in the binary.
    """
    names: dict[str, None] = {}
    values: dict[str, None] = {}
    for entry in trace:
        if entry.function not in _HEADER_KEY_CALLS:
            continue
        args = entry.args
        key = args.get("key")
        if isinstance(key, str) and 0 < len(key) <= 64:
            names[key.lower()] = None
        value = args.get("value")
        if isinstance(value, str) and 0 < len(value) <= 32:
            values[value] = None
    return Vocabulary(list(names), list(values))
