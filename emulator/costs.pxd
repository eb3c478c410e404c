# Cython declarations for the compiled speed mode (emulator.speedups): Cost becomes an extension
# type whose __slots__ are C struct fields (every metered callback makes one). The module's source
# is unchanged and stays the reference (pure mode ignores this file).
cdef class Cost:
    cdef public object instructions, host_calls, bytes_to_guest, bytes_from_guest, alloc_calls, alloc_bytes
