# Cython declarations for the compiled speed mode (emulator.speedups): Buffer's __slots__ become C
# struct fields. The module's source is unchanged and stays the reference.
cdef class Buffer:
    cdef public object data, mutable
