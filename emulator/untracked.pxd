# Cython declarations for the compiled speed mode (emulator.speedups): the collector's rule for plain
# tuples, inline, so that the C accelerator's trace recorder (emulator/engines/_crossing.pyx)
# applies it to each record it keeps without a Python call, and untracked.pyx's ``untracked`` to
# each log record. (This file is part of untracked's digest; the modules load together or not at
# all, so a change here makes the build stale for the recorder too.)
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef extern from "Python.h":
    int PyObject_GC_IsTracked(object)
    void PyObject_GC_UnTrack(void*)


cdef inline void untrack_if_plain(object record) noexcept:
    """Stop the collector tracking ``record`` (a tuple or a tuple subclass) when none of its items
    is tracked: such a tuple can be in no cycle. Anything else stays as it was."""
    cdef Py_ssize_t i
    if not PyTuple_Check(record) or not PyObject_GC_IsTracked(record):
        return
    for i in range(PyTuple_GET_SIZE(record)):
        if PyObject_GC_IsTracked(<object>PyTuple_GET_ITEM(record, i)):
            return
    PyObject_GC_UnTrack(<void*>record)
