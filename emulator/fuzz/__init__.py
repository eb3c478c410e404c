"""Property-based fuzzing of filters: options, strategies, the runner and its invariants.

:mod:`.runner` holds ``fuzz_filter``, ``fuzz_test``, the stateful machine and the report;
:mod:`.strategies` the hypothesis strategies for messages, scenarios and host faults;
:mod:`.invariants` the checks run on every example. Importing :mod:`emulator` imports none of
this: it is loaded on first use.
"""

from __future__ import annotations

from . import runner as _runner
from .runner import *  # noqa: F403  (the runner's __all__ is this package's API)

__all__ = list(_runner.__all__)
