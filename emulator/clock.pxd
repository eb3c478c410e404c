# Cython declarations for the compiled speed mode (emulator.speedups): VirtualClock's __slots__
# become C struct fields. The module's source is unchanged and stays the reference.
cdef class VirtualClock:
    cdef public object _elapsed, _epoch
