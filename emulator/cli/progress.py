"""Progress of a long ``fuzz`` or ``bench`` run, on stderr.

On a terminal it is a rich progress bar (done of planned, rate, time left, findings and guest
blocks so far); anywhere else (a CI log, a pipe) a plain line every :data:`PLAIN_EVERY_S` seconds
and one at the end, so logs stay short and still show that the run is alive.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

PLAIN_EVERY_S = 10.0
"""How often a run that is not on a terminal (a CI log) prints its progress line."""


class Progress:
    """Reports ``update(done, planned, found, covered)`` calls; use as a context manager.

    ``unit`` names what is counted (``examples``, ``executions``, ``rounds``), ``total`` how many
    are planned (known before the first update). Past ``planned``
    (hypothesis shrinking a finding) the phase reads ``shrinking`` and the bar stays full.
    ``terminal`` forces the bar on or off (default: whether ``stream`` is a TTY); ``findings=False``
    leaves the findings count out (a benchmark has none while it runs); ``running`` names the
    phase before ``planned`` is reached.
    """

    def __init__(
        self,
        unit: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        plain_every_s: float | None = None,
        findings: bool = True,
        running: str = "searching",
    ) -> None:
        self.unit = unit
        self.total = total
        self.findings = findings
        self.running = running
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.plain_every_s = PLAIN_EVERY_S if plain_every_s is None else plain_every_s
        self.started = time.monotonic()
        self._last_plain = self.started
        self._last: tuple[int, int, int, int | None] | None = None
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}, {task.fields[rate]}/s, ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream, force_terminal=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.running, total=self.total, unit=self.unit, rate="0", extra="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: int, planned: int, found: int = 0, covered: int | None = None) -> None:
        self.update(done, planned, found, covered)

    def update(self, done: int, planned: int, found: int = 0, covered: int | None = None) -> None:
        """``done`` of ``planned`` so far, ``found`` findings (or regressions), ``covered`` guest blocks."""
        self._last = (done, planned, found, covered)
        now = time.monotonic()
        if self._bar is not None:
            phase = self.running if done <= planned else "shrinking"
            self._bar.update(
                self._task,
                description=phase,
                completed=min(done, planned),
                total=planned,
                rate=f"{self._rate(done, now):.0f}",
                extra=self._extra(found, covered),
            )
            return
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self._plain(now)

    def close(self) -> None:
        """Stop the bar (it leaves nothing behind); a plain run prints its last line once more."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._last is not None and self._last_plain != self.started:
            self._plain(time.monotonic())

    def _rate(self, done: int, now: float) -> float:
        return done / max(now - self.started, 1e-9)

    def _extra(self, found: int, covered: int | None) -> str:
        parts = [f"{found} found"] if self.findings else []
        if covered is not None:
            parts.append(f"{covered} blocks covered")
        return ", ".join(parts)

    def _plain(self, now: float) -> None:
        assert self._last is not None
        done, planned, found, covered = self._last
        phase = self.running if done <= planned else "shrinking"
        extra = self._extra(found, covered)
        self.stream.write(f"  {done} {self.unit} ({planned} planned, {self._rate(done, now):.0f}/s){', ' + extra if extra else ''}, {phase}...\n")
        self.stream.flush()
