# Cython declarations for the compiled speed mode (emulator.speedups): TraceLog becomes an extension
# type whose fields are C struct members, so that the C accelerator's trace recorder
# (emulator/engines/_crossing.pyx) packs a record into it without a Python call. The module's
# source is unchanged and stays the reference (pure mode ignores this file).
cdef class TraceLog:
    cdef public bytearray data
    cdef public Py_ssize_t size, count
    cdef public list objects, callbacks
    cdef public dict callback_index
