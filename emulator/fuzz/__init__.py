"""Property-based fuzzing of a compiled filter: generated traffic, host faults, the host lint.

Three front doors:

* :func:`fuzz_filter` runs hypothesis over generated scenarios (exchanges with arbitrary headers,
  chunking and trailers, callout answers drawn when the filter makes a call, optional plugin
  configurations and host faults), checks the invariants of :mod:`emulator.fuzz.invariants` after each,
  shrinks every distinct violation to a minimal example and returns it as a scenario file that
  ``proxy-wasm-emulator run`` replays::

      report = fuzz_filter("filter.wasm", examples=200, seed=1)
      for finding in report.findings:
          print(finding.invariant, finding.violations)
          finding.write("failure.json")      # proxy-wasm-emulator run filter.wasm failure.json

* :func:`filter_state_machine` builds a hypothesis ``RuleBasedStateMachine`` that interleaves new
  streams, the phases of open streams, clock advances (ticks, callout timeouts), callout and gRPC
  answers, queue events and reconfigurations, checking the invariants after every step::

      TestMyFilter = filter_state_machine("filter.wasm").TestCase

* :func:`fuzz_test` turns the same example into a plain hypothesis test, so ``pytest``,
  ``pytest -n`` and HypoFuzz run it like any other property::

      test_my_filter = settings(max_examples=500)(fuzz_test("filter.wasm"))

All of them, and ``proxy-wasm-emulator fuzz``, take one :class:`FuzzOptions` (or its fields as
keyword arguments): ``fuzz_filter(path, FuzzOptions(examples=200, faults=True))``.

Header names come from a dictionary harvested from the module's data segments
(:func:`harvest_strings`), mixed with random and common names, so the fuzzer reaches the headers a
filter looks for without being told. Every example runs in a fresh :class:`~emulator.Host` (seeded;
compiled modules are shared process-wide, so the reset costs one VM start). A finding is shrunk by
hypothesis, then delta-debugged at the scenario level (streams, headers, frames, trailers,
responders, faults) and replayed once more from the file alone.

Long campaigns: put ``fuzz_test`` targets (or :func:`filter_state_machine` ``.TestCase`` classes) in
a test module and hand it to HypoFuzz (``pip install hypofuzz``, then
``hypothesis fuzz -n 8 -- tests/test_fuzz_my_filter.py``), which spreads the targets over worker
processes and keeps a database of interesting inputs; ``pytest -n auto`` with a large
``max_examples`` profile works too. Each failure message carries the scenario to replay with
``proxy-wasm-emulator run FILTER.wasm FILE``. Coverage guidance only sees the emulator's Python
code (which host calls and stream paths a filter reaches), not the guest's own branches.

The modules, from the bottom up: :mod:`.options` (:class:`FuzzOptions` and each front door's
defaults), :mod:`.words` (the built-in dictionary: generic HTTP words), :mod:`.values` (what is
generated, as plain data classes), :mod:`.drawn` (one draw decoded into a whole value),
:mod:`.strategies` (the hypothesis strategies for messages, scenarios and host faults),
:mod:`.invariants` (the checks run on every example), :mod:`.harvest` (the module's words),
:mod:`.vocabulary` (the dictionary of one run),
:mod:`.faults` (host faults applied), :mod:`.execution` (one scenario run and checked),
:mod:`.cases` (what a generated example is drawn from), :mod:`.report` (findings, reports, replay
files), :mod:`.shrink` (delta-debugging a finding), :mod:`.runner` (:func:`fuzz_filter`,
:func:`fuzz_test`) and :mod:`.stateful` (the state machine). Importing :mod:`emulator` imports none
of this: it is loaded on first use. Hypothesis is the ``[fuzz]`` extra: without it the guided
engine works and the hypothesis front doors raise :class:`emulator.extras.MissingExtraError`.
"""

from __future__ import annotations

from .execution import Execution, execute_scenario
from .faults import FaultInjectingObserver, InjectedFault
from .guided import guided_fuzz
from .harvest import Vocabulary, data_segments, harvest_strings, host_call_vocabulary, literal_pieces, module_vocabulary, own_strings
from .options import FUZZ_TEST_DEFAULTS, STATE_MACHINE_DEFAULTS, FuzzOptions
from .report import Finding, FuzzReport, format_json
from .runner import FuzzSetupError, fuzz_filter, fuzz_test
from .stateful import filter_state_machine, run_filter_state_machine

__all__ = [
    "FUZZ_TEST_DEFAULTS",
    "STATE_MACHINE_DEFAULTS",
    "Execution",
    "FaultInjectingObserver",
    "Finding",
    "FuzzOptions",
    "FuzzReport",
    "FuzzSetupError",
    "InjectedFault",
    "Vocabulary",
    "data_segments",
    "execute_scenario",
    "filter_state_machine",
    "format_json",
    "fuzz_filter",
    "fuzz_test",
    "harvest_strings",
    "guided_fuzz",
    "host_call_vocabulary",
    "literal_pieces",
    "module_vocabulary",
    "own_strings",
    "run_filter_state_machine",
]
