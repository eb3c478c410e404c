# Cython declarations for the compiled speed mode (emulator.speedups): Vm becomes an extension type
# whose fields are read and written as C struct members instead of through its __dict__. The
# module's source is unchanged and stays the reference (pure mode ignores this file). The
# __dict__ keeps any other attribute settable, as on the pure class; fields hold any object but the
# typed ones, which the request path reads most (their type is the one the source gives them).
from emulator.engines.base cimport GuestMemory
from emulator.glue.base cimport Glue
from emulator.host cimport Host


cdef class Vm:
    cdef dict __dict__
    cdef object __weakref__
    # what every host call and callback reads, first and together (two cache lines): the guest's
    # work evicts the host's lines between calls, and each line read again costs more than its reads
    cdef public Host host
    cdef public GuestMemory memory
    cdef public object allowed_imports, effective_context, _running, current_callback, current_context, failed
    cdef public dict contexts, _exports
    cdef public Glue _calls  # every callback points it at this VM
    cdef public object _costs, _fuel, _deadline
    # the counters of every host call, copy and allocation, and their marks at the start of the
    # metered callback running: C integers, no int object per call or per mark
    cdef public long long host_calls, bytes_to_guest, bytes_from_guest, alloc_calls, alloc_bytes
    cdef long long _before_host_calls, _before_to_guest, _before_from_guest, _before_alloc_calls, _before_alloc_bytes
    cdef object _before_fuel
    cdef public object program, abi, abi_010, vm_id, vm_config, environment, plugins
    cdef public int headers_arity
    cdef public object start_imports, notes, console, instructions
    cdef public object _earlier_memory, last_cost, _budget, _fuel_per_callback, _fuel_mark
    cdef public object _next_id, _tokens, instance, coverage_memory
    cdef public object _alloc, allocator

    cpdef object _active(self)
    cpdef new_context_id(self)
    cpdef object alloc(self, Py_ssize_t size)
    cpdef _meter(self)
    cpdef _cost_since(self)
    cpdef call_in(self, context_id, export, tuple args)
    cpdef bint has_export(self, name) except -1
