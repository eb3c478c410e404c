"""Hardening fuzzers (issue #8): hostile guests and malformed modules.

Two campaigns prove that whatever a guest does, the emulator keeps running, reports clearly and
keeps its state intact:

* **Hostile guests** (:func:`run_hostile_campaign`, :func:`draw_plan`, :func:`run_plan`): generated
  WAT modules import every ``env`` function (and every WASI function) and make a planned sequence
  of host calls with adversarial constants baked in: out-of-bounds pointers and sizes, sizes that
  overflow u32 (``ptr + size > 2**32``), invalid enums, calls from the wrong phase (``_initialize``,
  ``proxy_on_vm_start``, the VM context, a context that does not exist, stream callbacks,
  ``on_log``...), re-entrant calls (the guest allocator itself makes a host call) and an allocator
  that returns garbage (0, an address past the end, a huge value), grows memory or traps. Each call
  must return a proper status or trap cleanly, no Python exception may escape except emulator
  errors, and the host state written by earlier well-formed calls (shared data, metrics, a queue,
  the log) must survive: a fresh VM in the same host still reads it.
* **Malformed modules** (:func:`run_mutation_campaign`, :func:`mutate`, :func:`load_mutant`):
  truncated, bit-flipped, byte-smashed, section-shuffled and spliced versions of the fixtures, plus
  generated modules with wrong signatures for known imports and exports. Each must give a
  :class:`~emulator.ModuleLoadError` or :class:`~emulator.PluginStartError`, or start; a module
  that starts is exercised with one HTTP exchange and ticks, where a trap is fine and anything
  else is not. Guest code runs under a wall-clock deadline (wasmtime epochs), so a mutant that
  loops forever is stopped instead of hanging the campaign.

Plans and mutants are drawn through a :class:`Chooser`: :class:`RandomChooser` (seeded, for the
campaigns) or :class:`DataChooser` (a hypothesis ``data`` object, for shrinking tests)::

    from emulator.hardening import run_hostile_campaign, run_mutation_campaign
    run_hostile_campaign(calls=2000, seed=1)     # {"calls": 2013, "crashes": 0, "escaped_exceptions": 0, ...}
    run_mutation_campaign(mutants=300, seed=1)   # {"mutants": 300, "load_errors": ..., "started": ..., ...}

Long runs by hand (each chunk in a child process, so a crash is counted, not fatal)::

    python -m emulator.hardening hostile --calls 100000 --seed 1 --isolate 10000
    python -m emulator.hardening mutants --mutants 10000 --seed 1 --isolate 1000

The modules, from the bottom up: :mod:`.choosers` (where the randomness comes from),
:mod:`.layout` (a hostile guest's memory, sentinels and payloads), :mod:`.calls` (one hostile host
call), :mod:`.wat` (the text a plan compiles to), :mod:`.plans` (guest plans), :mod:`.results`
(what the campaigns record), :mod:`.guest_checks` (what a plan's run must show),
:mod:`.guest_campaign` (running plans), :mod:`.mutants` (malformed modules), :mod:`.isolate`
(chunks in child processes) and :mod:`.cli` (the command line).
"""

from __future__ import annotations

from .calls import HostCall, draw_call
from .choosers import Chooser, DataChooser, RandomChooser
from .guest_campaign import run_hostile_campaign, run_plan
from .layout import payload, slot
from .mutants import MUTATION_STRATEGIES, Mutant, fixture_modules, load_mutant, mutate, run_mutation_campaign, screen_on_wasmtime
from .plans import ALLOCATORS, PHASES, GuestPlan, draw_plan
from .results import MutantResult, PlanResult

__all__ = [
    "ALLOCATORS",
    "MUTATION_STRATEGIES",
    "PHASES",
    "Chooser",
    "DataChooser",
    "GuestPlan",
    "HostCall",
    "MutantResult",
    "Mutant",
    "PlanResult",
    "RandomChooser",
    "draw_call",
    "draw_plan",
    "fixture_modules",
    "load_mutant",
    "mutate",
    "payload",
    "run_hostile_campaign",
    "run_mutation_campaign",
    "run_plan",
    "screen_on_wasmtime",
    "slot",
]
