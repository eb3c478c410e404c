# Cython declarations for the compiled speed mode (emulator.speedups): Glue, the base of every
# host-call family, becomes an extension type, so ``self.vm`` is a C struct member. The families
# stay Python classes; the module's source is unchanged and stays the reference.
cdef class Glue:
    cdef dict __dict__
    cdef object __weakref__
    cdef public object vm
