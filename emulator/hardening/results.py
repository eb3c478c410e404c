"""What the campaigns record: one plan's run (:class:`PlanResult`), one mutant's load
(:class:`MutantResult`), and the text kept for a Python exception that escaped the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from abi.records import field, record

if TYPE_CHECKING:
    from .mutants import Mutant
    from .plans import GuestPlan

__all__ = ["MutantResult", "PlanResult"]


@record
class PlanResult:
    """What happened to one plan: per-call statuses, the trap if any, and every problem found."""

    plan: GuestPlan
    reached: bool = False
    statuses: list[int | None] = field(default_factory=list)
    """Per planned call: the status the guest got, ``None`` if not reached (after a trap)."""
    trapped_at: int | None = None
    """Index of the call during which the guest trapped."""
    pages: list[int] = field(default_factory=list)
    """Per planned call: linear memory pages when it was made (memory may grow during a plan)."""
    trap: str | None = None
    """``restricted``, ``wasm``, ``proc_exit``, ``not_implemented`` or an emulator error name."""
    reentrant_calls: int = 0
    problems: list[str] = field(default_factory=list)
    """Oracle violations, corrupted state and reports that failed."""
    escaped: list[str] = field(default_factory=list)
    """Python exceptions that were not emulator errors (bugs)."""
    driver_errors: list[str] = field(default_factory=list)
    """Emulator errors raised to the test driver (allowed, counted)."""
    fidelity: list[str] = field(default_factory=list)
    """Answers that differ from cpp-host without hurting robustness (reported, not failures)."""
    logs_after_start: list[Any] = field(default_factory=list, repr=False)

    @property
    def calls_tried(self) -> int:
        """Host calls the guest really made (including the one it trapped in)."""
        return sum(s is not None for s in self.statuses) + (1 if self.trapped_at is not None else 0) + self.reentrant_calls

    def report(self) -> str:
        """A reproducer: the plan, what went wrong, and the WAT."""
        return "\n".join([self.plan.describe(), *self.escaped, *self.problems, "--- WAT ---", self.plan.wat()])


@record
class MutantResult:
    """How the emulator took one mutant."""

    mutant: Mutant
    outcome: str = "?"
    """``load_error``, ``start_error``, ``started`` or ``other_exception``."""
    error: str = ""
    exercise: str = ""
    """For a started module: ``ok``, ``trap``, ``interrupt`` or ``exception``."""
    problems: list[str] = field(default_factory=list)
    runaway: bool = False
    """Guest code hit the deadline (an infinite loop): stopped cleanly."""
    max_memory: int = 0


def _escaped(where: str, exc: BaseException) -> str:
    import traceback

    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    return f"{where}: {type(exc).__name__}: {exc}\n{tb}"
