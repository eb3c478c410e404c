# cython: language_level=3
"""The optional C helper that takes a record of plain values out of the garbage collector.

Python's collector stops tracking an exact ``tuple`` of plain values (numbers, strings, bytes,
None) at its first pass, but never a tuple *subclass*. A :class:`~emulator.logs.LogRecord` is one,
and a host keeps every record: a long run's logs survive into the oldest generation, and every
full collection then walks all of them (measured: 100,000 requests of the Go fixture keep
200,000 records, and the full passes cost about 0.25 µs a request, growing with the log).

:func:`untracked` applies to such a record the rule the collector applies to a plain tuple
(``untrack_if_plain`` in ``untracked.pxd``, which the trace recorder uses too). It is built with
the compiled speed mode (``emulator.speedups``); without it (pure Python, no C compiler)
the records stay tracked, which costs time and never correctness.
"""


def untracked(record):
    """``record`` (a tuple or a tuple subclass), no longer tracked by the collector when none of its
    items is: the collector's own rule for plain tuples (such a tuple can be in no cycle). Anything
    else comes back as it was."""
    untrack_if_plain(record)
    return record
