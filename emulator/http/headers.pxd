# Cython declarations for the compiled speed mode (emulator.speedups): HeaderMap becomes an
# extension type with C struct fields in place of its __slots__. The module's source is unchanged
# and stays the reference (pure mode ignores this file).
cdef class HeaderMap:
    cdef public list entries
    cdef public str kind
