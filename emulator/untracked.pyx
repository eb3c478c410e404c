# cython: language_level=3
"""The optional C helpers for objects the request path makes by the thousand: records of plain
values taken out of the garbage collector, and streams without an empty instance dict.

Python's collector stops tracking an exact ``tuple`` of plain values (numbers, strings, bytes,
None) at its first pass, but never a tuple *subclass*. A :class:`~emulator.logs.LogRecord` is one,
and a host keeps every record: a long run's logs survive into the oldest generation, and every
full collection then walks all of them (measured: 100,000 requests of the Go fixture keep
200,000 records, and the full passes cost about 0.25 µs a request, growing with the log).

:func:`untracked` applies to such a record the rule the collector applies to a plain tuple
(``untrack_if_plain`` in ``untracked.pxd``, which the trace recorder uses too), and
:func:`new_record` makes such a record in one C call. It is built with
the compiled speed mode (``emulator.speedups``); without it (pure Python, no C compiler)
the records stay tracked, which costs time and never correctness.

:func:`shed_empty_dict` drops a compiled object's instance dict while it is empty (see there).
"""

from cpython.number cimport PyNumber_Index
from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM


def untracked(record):
    """``record`` (a tuple or a tuple subclass), no longer tracked by the collector when none of its
    items is: the collector's own rule for plain tuples (such a tuple can be in no cycle). Anything
    else comes back as it was."""
    untrack_if_plain(record)
    return record


cdef extern from "Python.h":
    object PyType_GenericAlloc(PyTypeObject* cls, Py_ssize_t n)


def new_record(cls, level, message, context_id, root_id, vm_id, plugin_name, source):
    """``cls(level, message, ...)`` for a tuple subclass of seven fields such as
    :class:`~emulator.logs.LogRecord`, the level as its number (``operator.index``: a ``LogLevel``
    becomes its int), untracked as :func:`untracked` leaves it: every log line makes one, and this
    skips ``__new__``'s dispatch and the tuple it copies from (188 against 56 ns)."""
    if not (isinstance(cls, type) and issubclass(cls, tuple)):
        raise TypeError(f"new_record makes tuple subclasses, not {cls!r}")
    number = PyNumber_Index(level)
    cdef object record = PyType_GenericAlloc(<PyTypeObject*>cls, 7)
    _put(record, 0, number)
    _put(record, 1, message)
    _put(record, 2, context_id)
    _put(record, 3, root_id)
    _put(record, 4, vm_id)
    _put(record, 5, plugin_name)
    _put(record, 6, source)
    untrack_if_plain(record)
    return record


cdef inline void _put(object record, Py_ssize_t i, object value) noexcept:
    Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
    PyTuple_SET_ITEM(record, i, value)


cdef extern from *:
    """
    /* Drop o's instance dict if it is an exact dict with nothing in it; whether it did. */
    static int pwe_shed_empty_dict(PyObject* o) {
        Py_ssize_t offset = Py_TYPE(o)->tp_dictoffset;
        PyObject** slot;
        if (offset <= 0) return 0;
        slot = (PyObject**)((char*)o + offset);
        if (*slot == NULL || !PyDict_CheckExact(*slot) || PyDict_GET_SIZE(*slot) != 0) return 0;
        Py_CLEAR(*slot);
        return 1;
    }
    """
    bint pwe_shed_empty_dict(object o)


def shed_empty_dict(obj):
    """Drop ``obj``'s instance dict while it is empty; whether it did. Python makes the dict again
    the first time an attribute is set on it (or ``__dict__`` is read), so nothing changes but time.
    Only a dict kept at a fixed offset (a compiled class's) is dropped; anything else is left alone.

    A compiled class with a ``__dict__`` (so that any attribute stays settable, as on the pure class)
    makes a new, empty dict for every instance, and a ``cpdef`` method first checks, by that dict's
    version, whether the instance overrides it. Every new dict has a new version, so on a new
    stream that check missed Cython's cache once per method: a look-up of the method by name, about
    a tenth of a request's instructions. Instances without a dict share one version and hit."""
    return pwe_shed_empty_dict(obj)
