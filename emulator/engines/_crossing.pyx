# cython: language_level=3
"""The optional C accelerator of the wasmtime fast path: guest <-> host crossings, linear memory
access and trace recording without ctypes or Python frames.

Every callback into the guest and every host call out of it crosses between Python and wasmtime's
C API. The reference path (``wasmtime_engine._fast_caller``, ``_fast_host`` and ``_WasmtimeMemory``)
crosses through ctypes: a generated Python function, ctypes' argument conversion, a ctypes callback
object, a ``memoryview`` over the memory. This module does the same in C, with the same C
functions and the same rules:

* :class:`ExportCaller` calls ``wasmtime_func_call_unchecked`` with its arguments in a buffer on
  the C stack (so a nested call of the same export cannot clobber them). Where the engine enforces
  deadlines it releases the GIL, as ctypes does, so that the epoch ticker thread keeps running;
  otherwise it holds it, as a plain C call does. Arguments
  are reduced modulo 2**32 (i32) or 2**64 (i64); an i32 result is unsigned, an i64 one signed.
* ``host_trampoline`` is the ``wasmtime_func_unchecked_callback_t`` of every import: it takes
  the GIL, calls the :class:`HostThunk`'s Python function with the arguments as ints (i32
  unsigned, i64 signed), writes its result, and turns any exception into a trap through the
  thunk's ``trap_for`` (which stashes the exception for the call site), as the ctypes callback does.
  The function is vectorcalled on a C array of the arguments (a bound method's function with its
  receiver first): no argument tuple, no bound-method step; an import's :class:`HostCall` makes a
  tuple only for an observer that takes one.
* :class:`FuelReader` reads the store's fuel (metering reads it after every callback).
* :class:`LinearMemory` is a :class:`emulator.engines.base.GuestMemory` whose accesses are in C
  (cpdef overrides: a host call's reads and writes are C calls end to end).
* :class:`HostCall` is an import's Python-side wrapper (phase restriction, count, observer, bad
  pointers), with the generated Python wrapper as its reference.
* :class:`TraceRecorder` records a host call into the trace (``emulator.trace.RECORDERS``), with
  its reads made on a :class:`LinearMemory` in C; the generated Python recorder is its reference.

Only functions of i32 and i64 values, with at most ``_MAX`` parameters and one result, cross here
(:func:`supports`); any other takes the ctypes path.

It is built with the compiled speed mode (``emulator.speedups``), reads the VM's fields as the C
struct its declarations make of it (``emulator/vm/instance.pxd``), and is used only with the
compiled modules it was built with, from this exact source; ``PROXY_WASM_EMULATOR_PURE=1`` and
machines without a C compiler run the ctypes path, and CI runs the whole suite both ways.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Check, PyDict_GetItem, PyDict_GetItemWithError
from cpython.list cimport PyList_Check, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLongMask, PyLong_FromLongLong
from cpython.method cimport PyMethod_Check, PyMethod_GET_FUNCTION, PyMethod_GET_SELF
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_CheckExact
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy

import ctypes

cimport cython

from emulator.contexts cimport StreamContext
from emulator.engines.base cimport GuestMemory
from emulator.glue.base cimport Glue
from emulator.host cimport Host
from emulator.http.stream cimport HttpStream
from emulator.trace cimport TraceLog
from emulator.untracked cimport untrack_if_plain
from emulator.vm.instance cimport Vm

cdef extern from "Python.h":
    object _vectorcall "PyObject_Vectorcall"(object callable, PyObject** args, size_t nargsf, PyObject* kwnames)
    size_t _ARGUMENTS_OFFSET "PY_VECTORCALL_ARGUMENTS_OFFSET"

ctypedef void* (*call_t)(void* ctx, void* func, uint64_t* args, size_t n, void** trap) noexcept nogil
ctypedef void* (*get_fuel_t)(void* ctx, uint64_t* fuel) noexcept nogil
ctypedef uint8_t* (*mem_data_t)(void* ctx, void* mem) noexcept nogil
ctypedef size_t (*mem_size_t)(void* ctx, void* mem) noexcept nogil

cdef extern from "Python.h":
    int PyBUF_WRITE

cdef enum:
    _MAX = 16  # the most parameters a function may have here; one with more takes the ctypes path

cdef enum:
    NONE = 0
    I32 = 1
    I64 = 2


cdef int _kind(str t):
    """I32 or I64: :func:`supports` admitted only those."""
    return I32 if t == "i32" else I64


def supports(params, results):
    """Whether a function of these value types can cross here: i32 and i64 only, at most ``_MAX``
    parameters and one result."""
    return len(params) <= _MAX and len(results) <= 1 and all(t in ("i32", "i64") for t in params) and all(t in ("i32", "i64") for t in results)


cdef class ExportCaller:
    """``caller(*args)``: one guest export, called through ``wasmtime_func_call_unchecked``.

    ``release_gil``: release the GIL while the guest runs, which the engine's epoch ticker thread
    needs to enforce a deadline. Without deadlines the call holds it, as a plain C call does: a
    callback lasts microseconds, and releasing and retaking the GIL costs about 20 ns a crossing.
    """

    cdef call_t call
    cdef void* ctx
    cdef void* func
    cdef size_t nslots
    cdef Py_ssize_t nparams
    cdef uint64_t masks[_MAX]
    cdef int result
    cdef object fail
    cdef object name
    cdef object keep
    cdef readonly bint release_gil

    def __init__(self, uintptr_t call, uintptr_t ctx, uintptr_t func, params, results, fail, name, keep, *, bint release_gil):
        cdef Py_ssize_t i
        if not supports(params, results):
            raise ValueError(f"{name}: ({', '.join(params)}) -> ({', '.join(results)}) cannot cross here")
        self.call = <call_t>call
        self.ctx = <void*>ctx
        self.func = <void*>func
        self.nparams = len(params)
        self.nslots = max(len(params), len(results), 1)
        for i in range(self.nparams):
            self.masks[i] = 0xFFFFFFFF if params[i] == "i32" else 0xFFFFFFFFFFFFFFFF
        self.result = _kind(results[0]) if results else NONE
        self.fail = fail  # fail(name, err, trap) -> the exception to raise
        self.name = name
        self.keep = keep  # what owns ctx and func (the store, the wasmtime.Func)
        self.release_gil = release_gil

    def __call__(self, *args):
        cdef uint64_t slots[2 * _MAX]
        cdef void* trap = NULL
        cdef void* err
        cdef Py_ssize_t i
        if len(args) != self.nparams:
            raise TypeError(f"{self.name}() takes {self.nparams} arguments ({len(args)} given)")
        for i in range(self.nparams):
            slots[2 * i] = PyLong_AsUnsignedLongLongMask(args[i]) & self.masks[i]
        if self.release_gil:
            with nogil:
                err = self.call(self.ctx, self.func, slots, self.nslots, &trap)
        else:
            err = self.call(self.ctx, self.func, slots, self.nslots, &trap)
        if err != NULL or trap != NULL:
            raise self.fail(self.name, <uintptr_t>err if err != NULL else None, ctypes.c_void_p(<uintptr_t>trap) if trap != NULL else None)
        if self.result == I32:
            return <uint32_t>slots[0]  # a C cast: to Cython 0xFFFFFFFF is a Python int, and & of it a Python op
        if self.result == I64:
            return <int64_t>slots[0]
        return None


cdef class HostThunk:
    """What :func:`host_trampoline` gets as its ``env``: the Python function of one import."""

    cdef object fn
    cdef object trap_for
    cdef object key
    cdef Py_ssize_t nparams
    cdef int kinds[_MAX]
    cdef int result

    def __init__(self, fn, params, results, trap_for, key):
        cdef Py_ssize_t i
        if not supports(params, results):
            raise ValueError(f"{key}: ({', '.join(params)}) -> ({', '.join(results)}) cannot cross here")
        self.fn = fn
        self.trap_for = trap_for  # trap_for(key, exc) -> a wasm_trap_t* (int) for wasmtime to unwind with
        self.key = key
        self.nparams = len(params)
        for i in range(self.nparams):
            self.kinds[i] = _kind(params[i])
        self.result = _kind(results[0]) if results else NONE

    @property
    def address(self):
        """The ``env`` pointer to give wasmtime (the caller keeps this object alive)."""
        return <uintptr_t><PyObject*>self


cdef void* host_trampoline(void* env, void* caller, uint64_t* p, size_t n) noexcept with gil:
    cdef HostThunk thunk = <HostThunk><PyObject*>env
    cdef int64_t values[_MAX]  # the arguments as C integers, an i32 unsigned and an i64 signed (what a trace record keeps)
    cdef PyObject* argv[_MAX + 1]  # [a free slot for _call_on, *the same as Python ints]
    cdef Py_ssize_t i, made = 0
    try:
        try:
            for i in range(thunk.nparams):
                values[i] = <int64_t><uint32_t>p[2 * i] if thunk.kinds[i] == I32 else <int64_t>p[2 * i]
                value = _int(values[i])
                Py_INCREF(value)  # held by argv until the call returns
                argv[i + 1] = <PyObject*>value
                made += 1
            if type(thunk.fn) is HostCall:  # an import's wrapper: called in C, with the values too
                out = (<HostCall>thunk.fn).call(argv, thunk.nparams, values, None)
            else:
                out = _call_on(thunk.fn, argv, thunk.nparams)
        finally:
            for i in range(made):
                Py_XDECREF(argv[i + 1])
        if thunk.result == I32:
            p[0] = <uint32_t>PyLong_AsUnsignedLongLongMask(out)
        elif thunk.result == I64:
            p[0] = PyLong_AsUnsignedLongLongMask(out)
        return NULL
    except BaseException as exc:
        return <void*><uintptr_t>thunk.trap_for(thunk.key, exc)


cdef enum:
    _INTS = 256  # the slots of the argument ints kept for reuse (a power of 2)

cdef PyObject* _int_kept[_INTS]  # slot -> the int last made for it (a reference held; NULL at first), and its value
cdef int64_t _int_value[_INTS]


cdef inline object _int(int64_t v):
    """``v`` as a Python int, the same object as the last time a value of its slot was ``v``.

    A guest passes the same pointers call after call (its stack's out-parameters, its static data,
    an allocator's recycled blocks), and every such int is a new object of its own to make and
    free. An int is immutable, so sharing one cannot be seen (but for ``is``). Slots are
    direct-mapped by value; the GIL, held here, guards them."""
    if -5 <= v <= 256:  # CPython's small ints: shared already
        return PyLong_FromLongLong(v)
    cdef Py_ssize_t slot = <Py_ssize_t>((<uint64_t>v ^ (<uint64_t>v >> 10)) & (_INTS - 1))
    if _int_value[slot] == v and _int_kept[slot] != NULL:
        return <object>_int_kept[slot]
    value = PyLong_FromLongLong(v)
    Py_XDECREF(_int_kept[slot])
    Py_INCREF(value)
    _int_kept[slot] = <PyObject*>value
    _int_value[slot] = v
    return value


cdef object _call_on(impl, PyObject** argv, Py_ssize_t n):
    """``impl(*argv[1:n + 1])``, with ``argv[0]`` free: a bound method's function is called with
    its receiver put there (no bound-method step, and no argument tuple at all)."""
    if PyMethod_Check(impl):
        argv[0] = PyMethod_GET_SELF(impl)  # borrowed: impl holds it
        return _vectorcall(<object>PyMethod_GET_FUNCTION(impl), argv, n + 1, NULL)
    return _vectorcall(impl, argv + 1, <size_t>n | _ARGUMENTS_OFFSET, NULL)


cdef class FuelReader:
    """``reader()``: the store's fuel through ``wasmtime_context_get_fuel`` (metering reads it after
    every callback). When wasmtime reports an error it returns ``slow()``, the reading of the ctypes
    path (which raises the engine's error), so it can stand in for ``Instance.get_fuel``."""

    cdef get_fuel_t get_fuel
    cdef void* ctx
    cdef object keep
    cdef object slow

    def __init__(self, uintptr_t get_fuel, uintptr_t ctx, keep, slow):
        self.get_fuel = <get_fuel_t>get_fuel
        self.ctx = <void*>ctx
        self.keep = keep  # the store that owns ctx
        self.slow = slow

    def __call__(self):
        cdef uint64_t fuel = 0
        if self.get_fuel(self.ctx, &fuel) != NULL:
            return self.slow()
        return fuel


@cython.final
cdef class LinearMemory(GuestMemory):
    """A wasmtime linear memory read and written in C: a :class:`emulator.engines.base.GuestMemory`
    with its rules (the same bounds checks and errors, little-endian integers, a read of size
    0 is ``b""`` wherever it points), without a memoryview slice or a struct call per access.

    The base address and size are cached and refreshed when an access goes past the cached size,
    as ``GuestMemory`` refreshes its view: wasmtime keeps a memory's base across growth.
    """

    cdef mem_data_t data_fn
    cdef mem_size_t size_fn
    cdef void* ctx
    cdef void* mem
    cdef uint8_t* base
    cdef Py_ssize_t cached
    cdef object error
    cdef object keep

    def __init__(self, uintptr_t data_fn, uintptr_t size_fn, uintptr_t ctx, uintptr_t mem, error, keep):
        self.data_fn = <mem_data_t>data_fn
        self.size_fn = <mem_size_t>size_fn
        self.ctx = <void*>ctx
        self.mem = <void*>mem
        self.error = error  # MemoryAccessError(ptr, size, memory_size)
        self.keep = keep  # the store and the wasmtime.Memory that own ctx and mem
        self.base = NULL
        self.cached = 0

    cdef inline bint _within(self, Py_ssize_t ptr, Py_ssize_t n) noexcept:
        """Whether ``n`` bytes at ``ptr`` are in memory (the base and size are read again when the
        cached ones say no: the memory may have grown)."""
        # written so that no sum can overflow, whatever the caller passes
        if 0 <= ptr <= self.cached and 0 <= n <= self.cached - ptr:
            return True
        self.base = self.data_fn(self.ctx, self.mem)
        self.cached = <Py_ssize_t>self.size_fn(self.ctx, self.mem)
        return 0 <= ptr <= self.cached and 0 <= n <= self.cached - ptr

    cdef int _check(self, Py_ssize_t ptr, Py_ssize_t n) except -1:
        if not self._within(ptr, n):
            raise self.error(ptr, n, self.cached)
        return 0

    @property
    def size(self):
        """Current size of linear memory in bytes."""
        return self.size_fn(self.ctx, self.mem)

    cpdef view(self, ptr, size):
        """A zero-copy, writable view of ``size`` bytes at ``ptr`` (valid until the memory grows)."""
        cdef Py_ssize_t at = ptr, n = size
        self._check(at, n)
        return PyMemoryView_FromMemory(<char*>(self.base + at), n, PyBUF_WRITE)

    cdef bytes _read(self, Py_ssize_t ptr, Py_ssize_t size):
        if size == 0:
            return b""
        self._check(ptr, size)
        return PyBytes_FromStringAndSize(<char*>(self.base + ptr), size)

    cdef inline bint _u32_at(self, Py_ssize_t ptr, uint32_t* out) noexcept:
        """Read the little-endian u32 at ``ptr`` into ``out``; False (nothing read) if it is not in memory."""
        if not self._within(ptr, 4):
            return False
        cdef uint8_t* p = self.base + ptr
        out[0] = <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)
        return True

    cdef inline bint _u64_at(self, Py_ssize_t ptr, uint64_t* out) noexcept:
        """Read the little-endian u64 at ``ptr`` into ``out``; False (nothing read) if it is not in memory."""
        if not self._within(ptr, 8):
            return False
        cdef uint8_t* p = self.base + ptr
        cdef uint64_t v = 0
        cdef int i
        for i in range(7, -1, -1):
            v = (v << 8) | p[i]
        out[0] = v
        return True

    cdef uint32_t _u32(self, Py_ssize_t ptr) except? 0xFFFFFFFF:
        cdef uint32_t v = 0
        if not self._u32_at(ptr, &v):
            self._check(ptr, 4)  # raises
        return v

    cdef uint64_t _u64(self, Py_ssize_t ptr) except? 0xFFFFFFFFFFFFFFFF:
        cdef uint64_t v = 0
        if not self._u64_at(ptr, &v):
            self._check(ptr, 8)  # raises
        return v

    cpdef read(self, ptr, size):
        """Copy ``size`` bytes out of the guest."""
        return self._read(ptr, size)

    cpdef write(self, ptr, data):
        """Copy ``data`` (bytes, bytearray or a memoryview) into the guest at ``ptr``."""
        cdef Py_ssize_t at = ptr, n
        if PyBytes_CheckExact(data):  # what host calls write: no buffer acquired
            n = PyBytes_GET_SIZE(data)
            if n:
                self._check(at, n)
                memcpy(self.base + at, PyBytes_AS_STRING(data), n)
            return
        cdef const uint8_t[::1] buf
        try:
            buf = data
        except (BufferError, TypeError, ValueError):  # not a contiguous byte buffer: as bytes
            buf = bytes(data)
        n = buf.shape[0]
        if n:
            self._check(at, n)
            memcpy(self.base + at, &buf[0], n)

    def u32(self, Py_ssize_t ptr):
        """Read a little-endian u32."""
        return self._u32(ptr)

    def u64(self, Py_ssize_t ptr):
        """Read a little-endian u64."""
        return self._u64(ptr)

    cdef inline void _put32(self, Py_ssize_t ptr, uint64_t value) noexcept:
        cdef uint8_t* p = self.base + ptr
        p[0] = value & 0xFF
        p[1] = (value >> 8) & 0xFF
        p[2] = (value >> 16) & 0xFF
        p[3] = (value >> 24) & 0xFF

    cpdef put_u32(self, ptr, value):
        """Write a little-endian u32 (``value`` modulo 2**32)."""
        cdef Py_ssize_t at = ptr
        cdef uint64_t v = PyLong_AsUnsignedLongLongMask(value)
        self._check(at, 4)
        self._put32(at, v)

    cpdef put_u32_pair(self, ptr_a, a, ptr_b, b):
        """Write two little-endian u32s (the ``ptr*``/``size*`` out-parameters of a copy-out), both
        checked before either is written."""
        cdef Py_ssize_t at_a = ptr_a, at_b = ptr_b
        cdef uint64_t va = PyLong_AsUnsignedLongLongMask(a)
        cdef uint64_t vb = PyLong_AsUnsignedLongLongMask(b)
        self._check(at_a, 4)
        self._check(at_b, 4)
        self._put32(at_a, va)
        self._put32(at_b, vb)

    cpdef put_u64(self, ptr, value):
        """Write a little-endian u64 (``value`` modulo 2**64)."""
        cdef Py_ssize_t at = ptr
        cdef uint64_t v = PyLong_AsUnsignedLongLongMask(value)
        self._check(at, 8)
        cdef uint8_t* p = self.base + at
        cdef int i
        for i in range(8):
            p[i] = (v >> (8 * i)) & 0xFF

    def snapshot(self):
        """A copy of the whole linear memory."""
        self._check(0, <Py_ssize_t>self.size_fn(self.ctx, self.mem))
        return PyBytes_FromStringAndSize(<char*>self.base, self.cached)

    def restore(self, image):
        """Write a snapshot back (the memory must not be smaller than the image)."""
        self.write(0, image)


cdef class HostCall:
    """The Python side of one import, in C: what ``emulator.vm.program._wrap`` generates (the
    reference), step for step. The phase restriction (``vm.allowed_imports``), then, for an
    ``env`` import, the host-call count and the observer (the trace's one-frame recorder when only
    a trace is kept, else the generic observer), then the call itself; a bad guest pointer is the
    import's fault status, with a note on the VM."""

    cdef Glue calls
    cdef object name
    cdef object impl
    cdef object restricted
    cdef object access_error
    cdef object fault
    cdef bint wasi
    cdef unsigned long long recording  # the serial of the recording whose recorder is cached here
    cdef object recorder

    def __init__(self, calls, name, impl, *, restricted, access_error, fault, wasi):
        self.calls = calls  # the ImportCalls whose .vm is the instance running now
        self.name = name
        self.impl = impl
        self.restricted = restricted  # restricted(vm, name) -> the RestrictedHostCall to raise
        self.access_error = access_error  # MemoryAccessError
        self.fault = fault  # InvalidMemoryAccess, or WASI's EFAULT
        self.wasi = wasi  # WASI imports are neither counted nor observed

    def __call__(self, *args):
        cdef PyObject* argv[_MAX + 1]
        return self.call(argv, _spread(self.name, args, argv), NULL, args)

    cdef object call(self, PyObject** argv, Py_ssize_t n, const int64_t* values, tuple args):
        """Run the import on the arguments ``argv[1:n + 1]`` (``argv[0]`` is free for
        :func:`_call_on`); ``values`` are the same as C integers where the caller has them (the
        trampoline), else NULL; ``args`` the same as a tuple, or None: it is made only for what
        takes one (an observer other than the trace's C recorder)."""
        cdef Vm vm = self.calls.vm
        cdef Host host
        cdef _Recording rec
        cdef PyObject* found
        allowed = vm.allowed_imports
        if allowed is not None and self.name not in allowed:
            raise self.restricted(vm, self.name)
        if not self.wasi:
            vm.host_calls += 1
            host = <Host?>vm.host
            obs = host.observer
            if obs is not None:
                rec = host._recording
                if rec is None or rec.observer is not obs or rec.trace is not host.trace:
                    if rec is not None:
                        rec.fold()  # what it tallied, into its observer's counts
                    rec = host._recording = _Recording(obs, host.trace)
                if rec.plain and host.expectations is None:
                    if self.recording == rec.serial:  # this import's recorder in the same recording
                        recorder = self.recorder
                    else:
                        found = PyDict_GetItem(rec.recorders, self.name)
                        if found is NULL:
                            recorder = rec.recorders[self.name] = obs.recorders[self.name]
                        else:
                            recorder = <object>found
                        self.recording, self.recorder = rec.serial, recorder
                    if type(recorder) is TraceRecorder:  # the C recorder: called directly, on the array
                        return (<TraceRecorder>recorder).record(vm, host, rec, self.impl, argv, n, values, args)
                    return recorder(vm, obs, self.impl, *_tuple_of(argv, n, args))
                return obs(vm, self.name, self.impl, _tuple_of(argv, n, args), self.fault)
        try:
            return _call_on(self.impl, argv, n)
        except self.access_error as exc:
            vm.note(f"{self.name}: {exc}")
            return self.fault


cdef Py_ssize_t _spread(name, tuple args, PyObject** argv) except -1:
    """Put ``args`` in ``argv[1:]`` (borrowed: the tuple holds them), ``argv[0]`` left free for
    :func:`_call_on`; their number."""
    cdef Py_ssize_t i, n = len(args)
    if n > _MAX:
        raise TypeError(f"{name}: more than {_MAX} arguments")
    for i in range(n):
        argv[i + 1] = PyTuple_GET_ITEM(args, i)
    return n


cdef tuple _tuple_of(PyObject** argv, Py_ssize_t n, tuple args):
    """``args`` if given, else the arguments ``argv[1:n + 1]`` as a new tuple."""
    cdef Py_ssize_t i
    if args is not None:
        return args
    args = PyTuple_New(n)
    for i in range(n):
        Py_INCREF(<object>argv[i + 1])  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(args, i, <object>argv[i + 1])
    return args


cdef inline Py_ssize_t _kept(trace) except -1:
    """The entries a trace holds besides its pending records, in C (a ``Trace`` is a list)."""
    return PyList_GET_SIZE(trace) if PyList_Check(trace) else <Py_ssize_t>list.__len__(trace)


cdef enum:
    _TALLIES = 256  # imports numbered below this are counted in C (emulator.trace numbers about 80)


cdef unsigned long long _recordings = 0  # the recordings made so far (each one's serial)
cdef object _UNSEEN = object()  # what no call returns or acts on: nothing cached yet


@cython.final
cdef class _Recording:
    """What :class:`HostCall` needs to record a host call, resolved from a host's observer and trace
    once (``host._recording``) instead of on every call: whether the observer is a plain one that
    takes the one-frame recorders (``observer.plain``, and a trace kept), its recorders and
    counts, and the trace's packed log. It stands while the host's observer and trace are the same
    objects; the expectations, which change what a call does, are checked on every call.

    The C recorders count their calls here, in C (``tally``, by import number), and :meth:`fold`
    adds them to the observer's ``Counter`` when the observer's ``counts`` is read and before the
    host replaces this with another."""

    # what every recorded call reads, first and together (the 2 KiB of tallies last)
    cdef object observer
    cdef object trace
    cdef object log  # the trace's TraceLog, or None (a trace of another kind)
    cdef readonly unsigned long long serial  # this recording's number: what HostCall's cached recorder is for
    cdef bint plain
    cdef bint tallying  # counts is a dict (a Counter): the C recorders tally instead
    cdef bint last_context_fits
    cdef object last_callback  # the callback of the last record packed, and its number in log
    cdef int64_t last_number
    cdef object last_context  # the context (id) of the last call, whether a packed record takes it, and its value
    cdef int64_t last_context_value
    cdef object counts
    cdef dict recorders  # name -> the observer's recorder, filled as imports are called
    cdef list names  # import number -> its name, for the tallies
    cdef Py_ssize_t tally[_TALLIES]

    def __init__(self, observer, trace):
        self.observer = observer
        self.trace = trace
        self.plain = bool(observer.plain) and trace is not None
        self.counts = getattr(observer, "_counts", None)
        self.recorders = {}
        pending = getattr(trace, "pending", None)
        self.log = pending if type(pending) is TraceLog else None
        self.tallying = PyDict_Check(self.counts)
        self.names = [None] * _TALLIES
        self.last_callback, self.last_number = None, 0
        self.last_context = _UNSEEN
        global _recordings
        _recordings += 1
        self.serial = _recordings

    def fold(self, observer=None):
        """Add the calls tallied in C to the observer's counts (only ``observer``'s, if given)."""
        cdef Py_ssize_t k
        if observer is not None and observer is not self.observer:
            return
        for k in range(_TALLIES):
            if self.tally[k]:
                self.counts[self.names[k]] += self.tally[k]
                self.tally[k] = 0


cdef enum:
    COPY_OUT = 0  # a ptr**/size* out-pair: the bytes it points at
    OUT_U32 = 4
    OUT_U64 = 8


cdef enum:
    _SCRATCH = 512  # the input bytes a record copies onto the C stack; more are read as bytes, as a flat record's
    _HEAD_SIZE = 32  # a packed record's head (emulator.trace._HEAD)
    _MAX_RECORD = 0xFFFFFFFF  # a record's size is a u32
    _WHOLE = 0xFFFF  # the import number of a record kept whole (emulator.trace._WHOLE)
    _ROOM = 1 << 16  # the least a trace log grows by (emulator.trace._ROOM)


cdef extern from *:
    """
    /* Write the low `width` bytes of `value` little-endian at `p`; the byte after them. A little-endian
       machine's integer is its own encoding: one store where `width` is a constant. */
    static inline char* pwe_le(char* p, uint64_t value, int width) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(p, &value, (size_t)width);
    #else
        for (int i = 0; i < width; i++) p[i] = (char)((value >> (8 * i)) & 0xFF);
    #endif
        return p + width;
    }
    """
    char* _le "pwe_le"(char* p, uint64_t value, int width) noexcept


cdef extern from *:
    """
    /* Write n i64 words little-endian at `p`; the byte after them (one copy on a little-endian machine). */
    static inline char* pwe_le_words(char* p, const int64_t* words, Py_ssize_t n) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(p, words, (size_t)n * 8);
        return p + n * 8;
    #else
        for (Py_ssize_t k = 0; k < n; k++) p = pwe_le(p, (uint64_t)words[k], 8);
        return p;
    #endif
    }
    """
    char* _le_words "pwe_le_words"(char* p, const int64_t* words, Py_ssize_t n) noexcept


cdef extern from "Python.h":
    # the same functions on a borrowed reference (no reference counting around the calls)
    bint _long_exact "PyLong_CheckExact"(PyObject* value) noexcept
    long long _as_long_long "PyLong_AsLongLongAndOverflow"(PyObject* value, int* overflow) noexcept


cdef inline bint _i64_of(PyObject* value, int64_t* out) noexcept:
    """Whether ``value`` is an exact int that fits an i64 (then in ``out``)."""
    cdef int overflow = 0
    if not _long_exact(value):
        return False
    out[0] = _as_long_long(value, &overflow)
    return overflow == 0


cdef inline bint _i64(object value, int64_t* out) noexcept:
    """:func:`_i64_of` on an object."""
    return _i64_of(<PyObject*>value, out)


@cython.final
cdef class TraceRecorder:
    """The trace's one-frame recorder of one ``env`` import (``emulator.trace.RECORDERS``), in C.

    It takes the steps of the generated Python recorder (``emulator.trace._recorder``, the
    reference) in the same order, with the same fallbacks and the same record: count the call,
    read its input ranges, run it, read what an Ok call wrote through its out-pointers, and append
    the record to the trace's :class:`~emulator.trace.TraceLog`. On a :class:`LinearMemory` whose
    reads all succeed it packs the record itself, copying the guest's bytes straight into the log
    (no Python object per call), with the bytes ``TraceLog.append`` writes; any other memory, a bad
    pointer, or a value the packing does not take builds the flat tuple ``(seq, name, status,
    context, callback, *args, *inputs, *outputs)`` and appends that, reading through
    ``capture_args`` and ``capture_results``, the functions the Python recorder falls back on.

    ``number`` is the import's number in a packed record; ``inputs`` are ``(pointer index, size
    index)`` pairs; ``outputs`` are ``(kind, index, size index)`` with kind 0 (a copy-out pair), 4
    (a u32) or 8 (a u64).
    """

    cdef object name
    cdef int number
    cdef Py_ssize_t nin
    cdef Py_ssize_t in_ptr[_MAX]
    cdef Py_ssize_t in_size[_MAX]
    cdef Py_ssize_t nout
    cdef int out_kind[_MAX]
    cdef Py_ssize_t out_a[_MAX]
    cdef Py_ssize_t out_b[_MAX]
    cdef object capture_args
    cdef object capture_results
    cdef object access_error
    cdef object from_flat
    cdef object fault
    cdef dict plain
    cdef object last_status, last_plain  # the last status looked up in plain, and what it gave:
    cdef bint last_ok, last_fits  # whether it is Ok (0), whether it is an int a packed record takes,
    cdef int64_t last_value  # and that int
    cdef object prev_status, prev_plain  # the same of the status before it (an import that
    cdef bint prev_ok, prev_fits  # answers Ok and NotFound by turns finds both here)
    cdef int64_t prev_value

    def __init__(self, name, int number, inputs, outputs, *, capture_args, capture_results, access_error, from_flat, plain, fault):
        cdef Py_ssize_t k
        if len(inputs) > _MAX or len(outputs) > _MAX:
            raise ValueError(f"{name}: more than {_MAX} input or output ranges")
        self.name = name
        self.number = number
        self.nin = len(inputs)
        for k in range(self.nin):
            self.in_ptr[k], self.in_size[k] = inputs[k]
        self.nout = len(outputs)
        for k in range(self.nout):
            self.out_kind[k], self.out_a[k], self.out_b[k] = outputs[k]
        self.capture_args = capture_args  # capture_args(vm, name, args): the generic reads, which say which pointer was bad
        self.capture_results = capture_results
        self.access_error = access_error  # MemoryAccessError
        self.from_flat = from_flat  # a flat record -> a TraceEntry (a trace that is not a Trace gets entries)
        self.plain = dict(plain)  # a Status member -> the plain int a record keeps
        self.last_status = self.prev_status = _UNSEEN
        self.fault = fault  # the status of a call that touched a bad pointer

    cdef tuple _inputs(self, LinearMemory lm, tuple args):
        cdef tuple out = PyTuple_New(self.nin)
        cdef Py_ssize_t k
        for k in range(self.nin):
            item = lm._read(args[self.in_ptr[k]], args[self.in_size[k]])
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
        return out

    cdef bint _read_outputs(self, LinearMemory lm, const int64_t* values, uint32_t* out_ptr, Py_ssize_t* out_len, uint64_t* words) noexcept:
        """Read what an Ok call wrote through its out-pointers (the arguments as their ``values``):
        each copy-out's pointer and size (its range checked) into ``out_ptr`` and ``out_len``, each
        u32 or u64 into ``words``; False where a pointer is bad."""
        cdef Py_ssize_t k
        cdef uint32_t n, w
        for k in range(self.nout):
            if self.out_kind[k] == COPY_OUT:
                if not (lm._u32_at(values[self.out_a[k]], &out_ptr[k]) and lm._u32_at(values[self.out_b[k]], &n)):
                    return False
                out_len[k] = n
                if n and not lm._within(out_ptr[k], n):
                    return False
            elif self.out_kind[k] == OUT_U64:
                if not lm._u64_at(values[self.out_a[k]], &words[k]):
                    return False
            else:
                if not lm._u32_at(values[self.out_a[k]], &w):
                    return False
                words[k] = w
        return True

    cdef tuple _outputs(self, LinearMemory lm, const int64_t* values):
        """The out-parameters as the flat record's values (copied-out bytes, or the integers); None
        where a pointer is bad (the generic reads then say which)."""
        cdef uint64_t words[_MAX]
        cdef Py_ssize_t out_len[_MAX]
        cdef uint32_t out_ptr[_MAX]
        cdef tuple out
        cdef Py_ssize_t k
        if not self._read_outputs(lm, values, out_ptr, out_len, words):
            return None
        out = PyTuple_New(self.nout)
        for k in range(self.nout):
            if self.out_kind[k] == COPY_OUT:
                item = PyBytes_FromStringAndSize(<char*>(lm.base + out_ptr[k]), out_len[k]) if out_len[k] else b""
            else:
                item = words[k]
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
        return out

    cdef bint _copy_in(self, LinearMemory lm, const int64_t* values, Py_ssize_t* in_len, char* scratch) noexcept:
        """Copy the input ranges into ``scratch`` (``_SCRATCH`` bytes), one after another, and their
        sizes into ``in_len``, from the arguments' ``values``; False if a range is not in memory or
        they do not fit."""
        cdef Py_ssize_t k, total = 0
        cdef int64_t at, size
        for k in range(self.nin):
            at, size = values[self.in_ptr[k]], values[self.in_size[k]]
            if size and not lm._within(at, size):
                return False
            if size > _SCRATCH - total:
                return False
            in_len[k] = size
            total += size
        for k in range(self.nin):
            memcpy(scratch, lm.base + values[self.in_ptr[k]], in_len[k])
            scratch += in_len[k]
        return True

    cdef tuple _raw(self, Py_ssize_t* in_len, char* scratch):
        """The input ranges in ``scratch`` as the tuple of bytes the flat record takes."""
        cdef tuple out = PyTuple_New(self.nin)
        cdef Py_ssize_t k
        for k in range(self.nin):
            item = PyBytes_FromStringAndSize(scratch, in_len[k])
            scratch += in_len[k]
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
        return out

    cdef bint _pack(self, _Recording rec, LinearMemory lm, Py_ssize_t nargs, const int64_t* values, Py_ssize_t* in_len, char* scratch, int64_t seq, int64_t plain, int64_t context, callback, bint ok) except -1:
        """Append the record to the recording's log, packed (the arguments as their ``values``);
        False (nothing appended) where a value does not fit the layout or an out-pointer is bad (the
        flat record then says so)."""
        cdef TraceLog log = <TraceLog>rec.log
        cdef int64_t head[3]
        cdef uint64_t words[_MAX]
        cdef Py_ssize_t out_len[_MAX]
        cdef uint32_t out_ptr[_MAX]
        cdef Py_ssize_t k, old, size
        cdef int64_t cb
        cdef PyObject* found
        cdef char* p
        head[0], head[1], head[2] = seq, plain, context
        if callback is not None and not PyUnicode_CheckExact(callback):
            return False
        if callback is rec.last_callback and callback is not None:  # the callback of the call before: its number
            cb = rec.last_number
        else:
            found = PyDict_GetItemWithError(log.callback_index, callback)  # a str or None: no error to keep
            cb = <object>found if found is not NULL else log.intern(callback)
            if cb < 0:
                return False
            rec.last_callback, rec.last_number = callback, cb
        size = _HEAD_SIZE + 8 * nargs
        for k in range(self.nin):
            size += 4 + in_len[k]
        if ok:  # after any Python call above: nothing runs between these reads and the copy
            if not self._read_outputs(lm, values, out_ptr, out_len, words):
                return False
            for k in range(self.nout):
                size += 4 + out_len[k] if self.out_kind[k] == COPY_OUT else 8
        if size > _MAX_RECORD:
            return False
        data = log.data
        old = log.size
        if old + size > PyByteArray_GET_SIZE(data):  # room for this record and as many bytes again (emulator.trace._PUT)
            PyByteArray_Resize(data, PyByteArray_GET_SIZE(data) + max(old + size, _ROOM))
        p = PyByteArray_AS_STRING(data) + old
        p = _le(p, <uint64_t>size, 4)
        p = _le(p, <uint64_t>self.number, 2)
        p = _le(p, <uint64_t>cb, 2)
        p = _le_words(p, head, 3)
        p = _le_words(p, values, nargs)
        for k in range(self.nin):
            p = _le(p, <uint64_t>in_len[k], 4)
            memcpy(p, scratch, in_len[k])
            p += in_len[k]
            scratch += in_len[k]
        if ok:
            for k in range(self.nout):
                if self.out_kind[k] == COPY_OUT:
                    p = _le(p, <uint64_t>out_len[k], 4)
                    if out_len[k]:
                        memcpy(p, lm.base + out_ptr[k], out_len[k])
                    p += out_len[k]
                else:
                    p = _le(p, words[k], 8)
        log.size = old + size
        log.count += 1
        return True

    def __call__(self, Vm vm, obs, impl, *args):
        cdef Host host = <Host?>obs.host
        cdef _Recording rec = _Recording(obs, host.trace)
        cdef PyObject* argv[_MAX + 1]
        cdef Py_ssize_t n = _spread(self.name, args, argv)
        try:
            return self.record(vm, host, rec, impl, argv, n, NULL, args)
        finally:
            rec.fold()  # a recording for this call only: its count goes into the observer's now

    cdef object record(self, Vm vm, Host host, _Recording rec, impl, PyObject** argv, Py_ssize_t nargs, const int64_t* given, tuple args):
        """Record the call of ``impl`` on the arguments ``argv[1:nargs + 1]`` (``argv[0]`` is free);
        ``given`` are their values as C integers, or NULL; ``args`` the same as a tuple, or None (it
        is made only where a fallback takes one)."""
        cdef PyObject* found
        cdef Py_ssize_t i, at
        cdef tuple raw = None, res = None, flat
        cdef LinearMemory lm = None
        cdef char scratch[_SCRATCH]
        cdef Py_ssize_t in_len[_MAX]
        cdef bint copied = False, ints = False, ok, fits
        cdef int64_t seq, value
        cdef int64_t own[_MAX]
        cdef const int64_t* values = given  # the trampoline's C integers where it gave them, else own's
        if type(vm.memory) is LinearMemory:
            lm = <LinearMemory>vm.memory
        name = self.name
        if rec.tallying and self.number < _TALLIES:  # counted in C, added to the Counter when it is read
            if rec.tally[self.number] == 0:
                rec.names[self.number] = name
            rec.tally[self.number] += 1
        else:
            rec.counts[name] += 1
        if given != NULL:  # the trampoline's: the ints of args, as C integers (alive until it returns)
            ints = True
        elif nargs <= _MAX:  # every argument an exact int that fits an i64: what a packed record takes
            values = own
            for i in range(nargs):
                if not _i64_of(argv[i + 1], &own[i]):
                    break
            else:
                ints = True
        if lm is not None:  # the input ranges, copied aside before the call can change them
            copied = ints and self._copy_in(lm, values, in_len, scratch)
            if not copied:  # a bad pointer, or more bytes than the scratch holds: as bytes
                args = _tuple_of(argv, nargs, args)
                try:
                    raw = self._inputs(lm, args)
                except Exception:  # a bad pointer: the generic reads say which
                    pass
        if raw is None and not copied:
            args = _tuple_of(argv, nargs, args)
            raw = self.capture_args(vm, name, args)
        try:
            status = _call_on(impl, argv, nargs)
        except self.access_error as exc:
            vm.note(f"{name}: {exc}")
            status = self.fault
        host._seq += 1
        seq = host._seq
        trace = host.trace
        if status is not self.last_status:  # another status than the call before's
            if status is self.prev_status:  # the one before that: the two swap places
                self.last_status, self.prev_status = self.prev_status, self.last_status
                self.last_plain, self.prev_plain = self.prev_plain, self.last_plain
                self.last_ok, self.prev_ok = self.prev_ok, self.last_ok
                self.last_fits, self.prev_fits = self.prev_fits, self.last_fits
                self.last_value, self.prev_value = self.prev_value, self.last_value
            else:  # its plain int, looked up; the last one moves back
                found = PyDict_GetItem(self.plain, status)
                plain = <object>found if found is not NULL else status
                self.prev_status, self.prev_plain, self.prev_ok, self.prev_fits, self.prev_value = (
                    self.last_status, self.last_plain, self.last_ok, self.last_fits, self.last_value
                )
                self.last_status, self.last_plain, self.last_ok = status, plain, plain == 0
                self.last_fits = _i64(plain, &self.last_value)
        # read together, at once: a recorder is shared by every host (a host in another thread may
        # cache its own status here as soon as a Python call runs)
        plain, ok, fits, value = self.last_plain, self.last_ok, self.last_fits, self.last_value
        ctx = vm._running if vm.effective_context is None else None  # Vm._active's rule without an effective context
        if ctx is None:
            ctx = vm._active()
        if type(ctx) is HttpStream:  # its id property's rule (contexts.StreamContext.id) on the field, in C
            context = (<StreamContext>ctx).context_id
            if context is None:  # `context_id or 0` for an int or None, without a truth test
                context = 0
        else:
            context = ctx.id
        if context is not rec.last_context:
            rec.last_context = context
            rec.last_context_fits = _i64(context, &rec.last_context_value)
        callback = vm.current_callback
        pending = rec.log if rec.log is not None else getattr(trace, "pending", None)  # None: not a Trace (a plain list put in host.trace)
        if copied:
            if rec.log is not None and fits and rec.last_context_fits and self._pack(
                rec, lm, nargs, values, in_len, scratch, seq, value, rec.last_context_value, callback, ok
            ):
                if (<TraceLog>pending).count + _kept(trace) > 2 * host.trace_limit:
                    trace.trim(host.trace_limit)
                return status
            raw = self._raw(in_len, scratch)
        args = _tuple_of(argv, nargs, args)  # the record is kept whole (a flat tuple)
        if ok:
            if lm is not None and ints:
                res = self._outputs(lm, values)
            if res is None:
                res = self.capture_results(vm, name, args)
        else:
            res = ()
        flat = PyTuple_New(5 + nargs + len(raw) + len(res))
        at = 0
        for item in (seq, name, plain, context, callback):
            Py_INCREF(item)
            PyTuple_SET_ITEM(flat, at, item)
            at += 1
        for part in (args, raw, res):
            for i in range(len(<tuple>part)):
                item = (<tuple>part)[i]
                Py_INCREF(item)
                PyTuple_SET_ITEM(flat, at, item)
                at += 1
        if pending is None:
            trace.append(self.from_flat(flat))
            return status
        untrack_if_plain(flat)  # a record kept whole: plain values only, untracked now
        pending.append(flat)
        if len(pending) + _kept(trace) > 2 * host.trace_limit:
            trace.trim(host.trace_limit)
        return status


def skip_records(bytearray data, Py_ssize_t n):
    """Where the first ``n`` records of a packed trace log end, and how many of them are kept whole:
    ``emulator.trace._skip`` (the reference) in C."""
    cdef const uint8_t* p = <const uint8_t*>PyByteArray_AS_STRING(data)
    cdef Py_ssize_t k, at = 0, whole = 0, end = PyByteArray_GET_SIZE(data)
    for k in range(n):
        if end - at < _HEAD_SIZE:
            raise ValueError(f"a trace log of {k} records, not {n}")
        whole += (p[at + 4] | (p[at + 5] << 8)) == _WHOLE
        at += <Py_ssize_t>(p[at] | (p[at + 1] << 8) | (p[at + 2] << 16) | (<uint32_t>p[at + 3] << 24))
    return at, whole


def trampoline_address():
    """The address of :func:`host_trampoline`, for ``wasmtime_linker_define_func_unchecked``."""
    return <uintptr_t>&host_trampoline
