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
* :class:`FuelReader` reads the store's fuel (metering reads it after every callback).
* :class:`LinearMemory` is :class:`emulator.engines.base.GuestMemory`'s interface in C.
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

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Check, PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_Append, PyList_Check, PyList_CheckExact, PyList_GET_SIZE
from cpython.long cimport PyLong_AsUnsignedLongLongMask, PyLong_FromLongLong, PyLong_FromUnsignedLong
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.ref cimport Py_INCREF, PyObject
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy

import ctypes

from emulator.host cimport Host
from emulator.untracked cimport untrack_if_plain
from emulator.vm.instance cimport Vm

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
            return slots[0] & 0xFFFFFFFF
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
    try:
        out = thunk.fn(*_arguments(thunk, p))
        if thunk.result == I32:
            p[0] = PyLong_AsUnsignedLongLongMask(out) & 0xFFFFFFFF
        elif thunk.result == I64:
            p[0] = PyLong_AsUnsignedLongLongMask(out)
        return NULL
    except BaseException as exc:
        return <void*><uintptr_t>thunk.trap_for(thunk.key, exc)


cdef tuple _arguments(HostThunk thunk, uint64_t* p):
    """The call's arguments as Python ints: an i32 unsigned, an i64 signed."""
    cdef Py_ssize_t i
    cdef tuple args = PyTuple_New(thunk.nparams)
    for i in range(thunk.nparams):
        value = PyLong_FromUnsignedLong(<uint32_t>p[2 * i]) if thunk.kinds[i] == I32 else PyLong_FromLongLong(<int64_t>p[2 * i])
        Py_INCREF(value)  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(args, i, value)
    return args


cdef class FuelReader:
    """``reader()``: the store's fuel through ``wasmtime_context_get_fuel`` (metering reads it after
    every callback); -1 when wasmtime reports an error, which the caller then reads the slow way."""

    cdef get_fuel_t get_fuel
    cdef void* ctx
    cdef object keep

    def __init__(self, uintptr_t get_fuel, uintptr_t ctx, keep):
        self.get_fuel = <get_fuel_t>get_fuel
        self.ctx = <void*>ctx
        self.keep = keep  # the store that owns ctx

    def __call__(self):
        cdef uint64_t fuel = 0
        if self.get_fuel(self.ctx, &fuel) != NULL:
            return -1
        return fuel


cdef class LinearMemory:
    """A wasmtime linear memory read and written in C: :class:`emulator.engines.base.GuestMemory`'s
    interface and rules (the same bounds checks and errors, little-endian integers, a read of size
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

    cdef int _check(self, Py_ssize_t ptr, Py_ssize_t n) except -1:
        # written so that no sum can overflow, whatever the caller passes
        if 0 <= ptr <= self.cached and 0 <= n <= self.cached - ptr:
            return 0
        self.base = self.data_fn(self.ctx, self.mem)
        self.cached = <Py_ssize_t>self.size_fn(self.ctx, self.mem)
        if not (0 <= ptr <= self.cached and 0 <= n <= self.cached - ptr):
            raise self.error(ptr, n, self.cached)
        return 0

    @property
    def size(self):
        """Current size of linear memory in bytes."""
        return self.size_fn(self.ctx, self.mem)

    def view(self, Py_ssize_t ptr, Py_ssize_t size):
        """A zero-copy, writable view of ``size`` bytes at ``ptr`` (valid until the memory grows)."""
        self._check(ptr, size)
        return PyMemoryView_FromMemory(<char*>(self.base + ptr), size, PyBUF_WRITE)

    cdef bytes _read(self, Py_ssize_t ptr, Py_ssize_t size):
        if size == 0:
            return b""
        self._check(ptr, size)
        return PyBytes_FromStringAndSize(<char*>(self.base + ptr), size)

    cdef uint32_t _u32(self, Py_ssize_t ptr) except? 0xFFFFFFFF:
        self._check(ptr, 4)
        cdef uint8_t* p = self.base + ptr
        return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)

    cdef uint64_t _u64(self, Py_ssize_t ptr) except? 0xFFFFFFFFFFFFFFFF:
        self._check(ptr, 8)
        cdef uint8_t* p = self.base + ptr
        cdef uint64_t v = 0
        cdef int i
        for i in range(7, -1, -1):
            v = (v << 8) | p[i]
        return v

    def read(self, Py_ssize_t ptr, Py_ssize_t size):
        """Copy ``size`` bytes out of the guest."""
        return self._read(ptr, size)

    def write(self, Py_ssize_t ptr, data):
        """Copy ``data`` (bytes, bytearray or a memoryview) into the guest at ``ptr``."""
        cdef const uint8_t[::1] buf
        try:
            buf = data
        except (BufferError, TypeError, ValueError):  # not a contiguous byte buffer: as bytes
            buf = bytes(data)
        cdef Py_ssize_t n = buf.shape[0]
        if n:
            self._check(ptr, n)
            memcpy(self.base + ptr, &buf[0], n)

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

    def put_u32(self, Py_ssize_t ptr, value):
        """Write a little-endian u32 (``value`` modulo 2**32)."""
        cdef uint64_t v = PyLong_AsUnsignedLongLongMask(value)
        self._check(ptr, 4)
        self._put32(ptr, v)

    def put_u32_pair(self, Py_ssize_t ptr_a, a, Py_ssize_t ptr_b, b):
        """Write two little-endian u32s (the ``ptr*``/``size*`` out-parameters of a copy-out), both
        checked before either is written."""
        cdef uint64_t va = PyLong_AsUnsignedLongLongMask(a)
        cdef uint64_t vb = PyLong_AsUnsignedLongLongMask(b)
        self._check(ptr_a, 4)
        self._check(ptr_b, 4)
        self._put32(ptr_a, va)
        self._put32(ptr_b, vb)

    def put_u64(self, Py_ssize_t ptr, value):
        """Write a little-endian u64 (``value`` modulo 2**64)."""
        cdef uint64_t v = PyLong_AsUnsignedLongLongMask(value)
        self._check(ptr, 8)
        cdef uint8_t* p = self.base + ptr
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

    cdef object calls
    cdef object name
    cdef object impl
    cdef object restricted
    cdef object access_error
    cdef object fault
    cdef bint wasi

    def __init__(self, calls, name, impl, *, restricted, access_error, fault, wasi):
        self.calls = calls  # the ImportCalls whose .vm is the instance running now
        self.name = name
        self.impl = impl
        self.restricted = restricted  # restricted(vm, name) -> the RestrictedHostCall to raise
        self.access_error = access_error  # MemoryAccessError
        self.fault = fault  # InvalidMemoryAccess, or WASI's EFAULT
        self.wasi = wasi  # WASI imports are neither counted nor observed

    def __call__(self, *args):
        cdef Vm vm = self.calls.vm
        cdef Host host
        allowed = vm.allowed_imports
        if allowed is not None and self.name not in allowed:
            raise self.restricted(vm, self.name)
        if not self.wasi:
            vm.host_calls += 1
            host = <Host?>vm.host
            obs = host.observer
            if obs is not None:
                if obs.plain and host.expectations is None and host.trace is not None:
                    recorder = obs.recorders[self.name]
                    if type(recorder) is TraceRecorder:  # the C recorder: called directly, no argument tuple
                        return (<TraceRecorder>recorder).record(vm, obs, self.impl, args)
                    return recorder(vm, obs, self.impl, *args)
                return obs(vm, self.name, self.impl, args, self.fault)
        try:
            return self.impl(*args)
        except self.access_error as exc:
            vm.note(f"{self.name}: {exc}")
            return self.fault


cdef enum:
    COPY_OUT = 0  # a ptr**/size* out-pair: the bytes it points at
    OUT_U32 = 4
    OUT_U64 = 8


cdef class TraceRecorder:
    """The trace's one-frame recorder of one ``env`` import (``emulator.trace.RECORDERS``), in C.

    It takes the steps of the generated Python recorder (``emulator.trace._recorder``, the
    reference) in the same order, with the same fallbacks and the same flat record: count the
    call, read its input ranges, run it, read what an Ok call wrote through its out-pointers, and
    append ``(seq, name, status, context, callback, *args, *inputs, *outputs)`` to the trace's
    pending records. On a :class:`LinearMemory` the reads are made without a Python call each; any
    other memory, and a bad pointer, is read by ``capture_args`` and ``capture_results``, the same
    functions the Python recorder falls back on.

    ``inputs`` are ``(pointer index, size index)`` pairs; ``outputs`` are ``(kind, index, size
    index)`` with kind 0 (a copy-out pair), 4 (a u32) or 8 (a u64).
    """

    cdef object name
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

    def __init__(self, name, inputs, outputs, *, capture_args, capture_results, access_error, from_flat, plain, fault):
        cdef Py_ssize_t k
        if len(inputs) > _MAX or len(outputs) > _MAX:
            raise ValueError(f"{name}: more than {_MAX} input or output ranges")
        self.name = name
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
        self.fault = fault  # the status of a call that touched a bad pointer

    cdef tuple _inputs(self, LinearMemory lm, tuple args):
        cdef tuple out = PyTuple_New(self.nin)
        cdef Py_ssize_t k
        for k in range(self.nin):
            item = lm._read(args[self.in_ptr[k]], args[self.in_size[k]])
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
        return out

    cdef tuple _outputs(self, LinearMemory lm, tuple args):
        cdef tuple out = PyTuple_New(self.nout)
        cdef Py_ssize_t k
        cdef uint32_t ptr, size
        for k in range(self.nout):
            if self.out_kind[k] == COPY_OUT:
                ptr = lm._u32(args[self.out_a[k]])
                size = lm._u32(args[self.out_b[k]])
                item = lm._read(ptr, size)
            elif self.out_kind[k] == OUT_U64:
                item = lm._u64(args[self.out_a[k]])
            else:
                item = lm._u32(args[self.out_a[k]])
            Py_INCREF(item)
            PyTuple_SET_ITEM(out, k, item)
        return out

    def __call__(self, vm, obs, impl, *args):
        return self.record(vm, obs, impl, args)

    cdef object record(self, vm, obs, impl, tuple args):
        cdef PyObject* found
        cdef Py_ssize_t i, at, nargs = len(args)
        cdef tuple raw = None, res = None, flat
        cdef Host host
        cdef LinearMemory lm = vm.memory if type(vm.memory) is LinearMemory else None
        name = self.name
        counts = obs.counts
        if PyDict_Check(counts):  # a Counter: counts[name] += 1 without its Python frames
            found = PyDict_GetItem(counts, name)
            PyDict_SetItem(counts, name, (<object>found + 1) if found is not NULL else 1)
        else:
            counts[name] += 1
        if lm is not None:
            try:
                raw = self._inputs(lm, args)
            except Exception:  # a bad pointer: the generic reads say which
                pass
        if raw is None:
            raw = self.capture_args(vm, name, args)
        try:
            status = impl(*args)
        except self.access_error as exc:
            vm.note(f"{name}: {exc}")
            status = self.fault
        if status == 0:
            if lm is not None:
                try:
                    res = self._outputs(lm, args)
                except Exception:
                    pass
            if res is None:
                res = self.capture_results(vm, name, args)
        else:
            res = ()
        host = <Host?>obs.host
        seq = host._seq + 1
        host._seq = seq
        trace = host.trace
        found = PyDict_GetItem(self.plain, status)
        plain = <object>found if found is not NULL else status
        context = vm.active.id
        callback = vm.current_callback
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
        untrack_if_plain(flat)  # plain values only: untracked now, not by the collector's next pass
        try:
            pending = trace.pending
        except AttributeError:  # not a Trace (a plain list put in host.trace): the entry itself
            trace.append(self.from_flat(flat))
            return status
        if PyList_CheckExact(pending):
            PyList_Append(pending, flat)
        else:
            pending.append(flat)
        if len(pending) + (PyList_GET_SIZE(trace) if PyList_Check(trace) else list.__len__(trace)) > 2 * host.trace_limit:
            trace.trim(host.trace_limit)
        return status


def trampoline_address():
    """The address of :func:`host_trampoline`, for ``wasmtime_linker_define_func_unchecked``."""
    return <uintptr_t>&host_trampoline
