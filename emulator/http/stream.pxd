# Cython declarations for the compiled speed mode (emulator.speedups): an HTTP stream and its two
# sides become extension types whose fields are C struct members (what most streams never change
# stays a class-level default, outside the struct). The module's source is unchanged and stays the
# reference (pure mode ignores this file).
from emulator.contexts cimport StreamContext

cdef class _Side:
    cdef public object body, body_open, buffering, done, ended, headers, headers_held, headers_open, headers_sent
    cdef public object headers_stop, held_body, held_trailers, input_missing, name, out, received_body, received_headers
    cdef public object received_trailers, trailers, trailers_creatable, trailers_created, trailers_held, trailers_open

cdef class HttpStream(StreamContext):
    cdef public object _log_copy, buffer_limit, callbacks, connection, filter_state, grpc_calls, http_calls, lints, notes
    cdef public object _in_filter_callback, request, response, start_ns
    cdef public object _destroyed, completed, created_in_vm, end_ns, error, in_log, local_response, mode, pending_local, route_cache_cleared
