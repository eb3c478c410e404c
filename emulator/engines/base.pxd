# Cython declarations for the compiled speed mode (emulator.speedups): GuestMemory becomes an
# extension type whose accesses are cpdef methods. A host call reads and writes the guest through
# them as C calls (the VM's memory is typed, emulator/vm/instance.pxd), and the accelerator's
# LinearMemory overrides them in C (emulator/engines/_crossing.pyx). The engines' own memories stay
# Python subclasses. The module's source is unchanged and stays the reference.
cdef class GuestMemory:
    cdef public object _size, _view
    cpdef view(self, ptr, size)
    cpdef read(self, ptr, size)
    cpdef write(self, ptr, data)
    cpdef put_u32(self, ptr, value)
    cpdef put_u32_pair(self, ptr_a, a, ptr_b, b)
    cpdef put_u64(self, ptr, value)
