"""The compiled-module cache stays within its size bound (least recently used out) and the CLI shows and empties it."""

from __future__ import annotations

import json
import os
import time

from emulator import Host
from emulator.cli import main as cli_main
from emulator.session import Session
from emulator.vm.cache import ModuleCache
from tests.conftest import FIXTURES, wat_module


def test_the_cache_evicts_the_least_recently_used_entries(tmp_path):
    first = Host(cache=ModuleCache(tmp_path), session=Session()).program(wat_module("minimal"))  # a first entry (artifact + outline)
    assert first is not None
    cache = ModuleCache(tmp_path)
    old = {p for p, _, _ in cache.entries()}
    assert old
    past = time.time() - 3600
    for p in old:
        os.utime(p, (past, past))  # used an hour ago
    small = cache.size() + 1
    cache.max_bytes = small  # room for little more than what is there
    Host(cache=cache, session=Session()).program(wat_module("lifecycle"))  # a new entry: the old ones must go
    now = {p for p, _, _ in cache.entries()}
    assert not (old & now), "the least recently used entries were kept"
    assert now and cache.size() <= max(small, max(n for _, n, _ in cache.entries()))


def test_cache_info_and_clear(tmp_path, capsys):
    Host(cache=ModuleCache(tmp_path), session=Session()).program(FIXTURES / "wat/minimal.wasm")
    assert cli_main(["cache", "info", "--cache-dir", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["directory"] == str(tmp_path) and info["entries"] >= 1 and info["bytes"] > 0
    assert cli_main(["cache", "clear", "--cache-dir", str(tmp_path), "--json"]) == 0
    cleared = json.loads(capsys.readouterr().out)
    assert cleared["freed_bytes"] == info["bytes"]
    assert ModuleCache(tmp_path).entries() == []
