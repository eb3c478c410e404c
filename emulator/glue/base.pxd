# Cython declarations for the compiled speed mode (emulator.speedups): Glue, the base of every
# host-call family, becomes an extension type: ``self.vm`` is a typed C struct member, and its
# helpers are C calls from the families compiled as its extensions (a .pxd beside theirs). The
# other families stay Python classes; the module's source is unchanged and stays the reference.
cimport cython

from emulator.contexts cimport ContextBase
from emulator.engines.base cimport GuestMemory
from emulator.vm.instance cimport Vm


cdef class Glue:
    cdef dict __dict__
    cdef object __weakref__
    cdef public Vm vm

    @cython.locals(vm=Vm, n=Py_ssize_t)
    cpdef bytes read(self, ptr, size)  # bytes: what GuestMemory.read returns, so callers decode in C

    cpdef ContextBase context(self)

    @cython.locals(vm=Vm, mem=GuestMemory)
    cpdef copy_out(self, data, ret_ptr, ret_size)
