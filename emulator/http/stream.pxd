# Cython declarations for the compiled speed mode (emulator.speedups): an HTTP stream and its two
# sides become extension types whose fields are C struct members (what most streams never change
# stays a class-level default, outside the struct), and the steps the stream calls on itself become
# cpdef methods: compiled code calls them in C, Python still calls them as methods (they cannot be
# replaced on an instance, as no method of a compiled class can be on the class). The module's
# source is unchanged and stays the reference (pure mode ignores this file).
cimport cython

from emulator.contexts cimport StreamContext
from emulator.http.headers cimport HeaderMap
from emulator.http.types cimport CallbackRecord, HttpMessage, begun_record

cdef class _Side:
    cdef public object body, body_open, buffering, done, ended, headers_held, headers_open, headers_sent
    cdef public object headers_stop, held_body, held_trailers, input_missing, name, received_body
    cdef public object received_trailers, trailers_creatable, trailers_created, trailers_held, trailers_open
    cdef public HttpMessage out
    cdef public HeaderMap headers, received_headers, trailers

cdef class HttpStream(StreamContext):
    cdef public list callbacks
    cdef public _Side request, response
    cdef public object _log_copy, buffer_limit, connection
    cdef object _filter_state, _grpc_calls, _http_calls, _lints, _notes  # made when first read: see the properties
    cdef public object _in_filter_callback, start_ns
    cdef public object _destroyed, completed, created_in_vm, end_ns, error, in_log, local_response, mode, pending_local, route_cache_cleared
    # the stream's own steps, called on itself for every request: C calls instead of Python method lookups
    @cython.locals(record=CallbackRecord)
    cpdef _call(self, name, tuple args)
    cpdef complete(self)
    cpdef finish_phase(self, phase)
    cpdef _cb(self, _Side side, what)
    cpdef _deliver_headers(self, _Side side, end_of_stream)
    cpdef _body_step(self, _Side side, data, end_of_stream)
    cpdef _deliver_body(self, _Side side, data, end_of_stream)
    cpdef _trailers_step(self, _Side side, trailers)
    cpdef _deliver_trailers(self, _Side side, trailers)
    cpdef _forward_headers(self, _Side side)
    @cython.locals(status=bytes)
    cpdef _missing_required(self, _Side side)
    cpdef _maybe_finish(self, _Side side)
    cpdef _headers_status(self, raw, CallbackRecord record)
    cpdef _data_status(self, raw, CallbackRecord record)
    cpdef _trailers_status(self, raw, CallbackRecord record)
    cpdef _after_callback(self, _Side side)
    @cython.locals(side=_Side)
    cpdef header_map(self, map_type, write)
    cpdef on_headers_modified(self, map_type)
    cpdef _out(self, _Side side, headers=*, body=*, trailers=*, end=*, bypass=*)


cpdef tuple _missing_pseudo_headers(HeaderMap h)
