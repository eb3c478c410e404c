# Cython declarations for the compiled speed mode (emulator.speedups): the records every stream and
# every callback make become extension types whose __slots__ are C struct fields, so making one
# costs a C allocation instead of a Python __init__. The module's source is unchanged and stays the
# reference (pure mode ignores this file).
cimport cython

cdef class HttpMessage:
    cdef public object headers, body, trailers, end_stream, reset, body_chunks

cdef class CallbackRecord:
    cdef public object name, args, raw, action, seq, cost
    cdef object _notes  # notes, made when first read


@cython.locals(record=CallbackRecord)
cpdef CallbackRecord begun_record(name, tuple args, seq)
