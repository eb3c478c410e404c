# Cython declarations for the compiled speed mode (emulator.speedups): the family becomes an
# extension type of Glue with no fields or C methods of its own, so its methods reach ``self.vm``
# and Glue's helpers in C, and Python still mixes it with the other families (their instance
# layout is Glue's). The module's source is unchanged and stays the reference.
from emulator.glue.base cimport Glue


cdef class MapCalls(Glue):
    pass
