# Cython declarations for the compiled speed mode (emulator.speedups): Host becomes an extension
# type whose fields are C struct members. The module's source is unchanged and stays the reference
# (pure mode ignores this file). The __dict__ keeps any other attribute settable; the class's
# methods cannot be patched on the compiled type (patch what they call instead).
cdef class Host:
    cdef dict __dict__
    cdef object __weakref__
    # what every host call reads, first and together (one cache line): the guest's work evicts the
    # host's lines between calls, and each line read again costs more than the reads on it
    cdef public object observer, _recording, expectations, trace
    cdef public long long _seq  # every callback and host call numbered: a C counter, no int object per call
    cdef public Py_ssize_t trace_limit  # read on every recorded host call
    cdef public object _console_partial, _deferred, cache, callback_deadline_s, callback_fuel, clock, clusters
    cdef public object connection, console_lines, costs, coverage, engine, foreign_functions, grpc_calls
    cdef public object http_calls, log_level, logs, metrics, node, properties, queues, random, restricted_start
    cdef public object seed, session, shared_data, vms, warned_inputs
    cpdef record_log(self, record)
    cpdef next_seq(self)
    cpdef drain(self)
    cpdef defer(self, action)
