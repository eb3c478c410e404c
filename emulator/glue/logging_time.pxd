# Cython declarations for the compiled speed mode (emulator.speedups): see maps.pxd.
from emulator.glue.base cimport Glue


cdef class LoggingTimeCalls(Glue):
    pass
