# Cython declarations for the compiled speed mode (emulator.speedups): the context base classes
# become extension types whose fields are C struct members, which emulator/http/stream.pxd extends
# (so the compiled modules load together or not at all). The module's source is unchanged and
# stays the reference (pure mode ignores this file). The __dict__ keeps any other attribute
# settable, as on the pure classes.
cimport cython

from emulator.host cimport Host
from emulator.http.headers cimport HeaderMap
from emulator.vm.instance cimport Vm


cdef class ContextBase:
    cdef dict __dict__
    cdef object __weakref__
    cdef public Host host
    cdef public Vm vm
    # a guest log line, on every proxy_log
    cpdef log(self, level, message, source=*)
    cpdef log_record(self, level, message, source=*)
    # the header-map calls, on every request: C calls from the glue and from each other
    cpdef header_map(self, map_type, write)
    cpdef on_headers_modified(self, map_type)
    @cython.locals(m=HeaderMap)
    cpdef get_header_map_value(self, map_type, key)
    @cython.locals(m=HeaderMap)
    cpdef add_header_map_value(self, map_type, key, value)
    @cython.locals(m=HeaderMap)
    cpdef replace_header_map_value(self, map_type, key, value)
    @cython.locals(m=HeaderMap)
    cpdef remove_header_map_value(self, map_type, key)

cdef class RootContext(ContextBase):
    # what a plugin's streams read of it on every request
    cdef public object root_id, name, connection, fail_policy, allow_on_headers_stop_iteration, root_context_id
    cdef public list streams

cdef class StreamContext(ContextBase):
    cdef public RootContext plugin
    cdef public object context_id
    cpdef log_record(self, level, message, source=*)
