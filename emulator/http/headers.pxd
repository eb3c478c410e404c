# Cython declarations for the compiled speed mode (emulator.speedups): HeaderMap becomes an
# extension type with C struct fields in place of its __slots__, and the helpers its methods call
# on itself become cpdef (C calls). The module's source is unchanged and stays the reference (pure
# mode ignores this file).
cimport cython


cpdef bytes _b(x)


@cython.locals(out=list, names=dict, text=str)
cpdef list normalize_headers(headers)


@cython.locals(k=bytes, seen_authority=bint, seen_regular=bint)
cpdef _layout(list pairs, request)


cdef class HeaderMap:
    cdef public list entries
    cdef public str kind
    # what its own methods call on every lookup and insert: C calls instead of Python method lookups
    @cython.locals(raw=bytes)
    cpdef _key(self, key)
    cpdef _append(self, bytes key, value)
    # what the stream and the header-map host calls call on every request
    @cython.locals(k=bytes, pair=tuple)
    cpdef get(self, key)
    cpdef list pairs(self)
    @cython.locals(other=HeaderMap)
    cpdef HeaderMap copy(self)
    cpdef add(self, key, value)
    cpdef replace(self, key, value)
    cpdef remove(self, key)
