"""WASI preview1 (and ``wasi_unstable``) as proxy-wasm-cpp-host provides it (abi-spec.md §6.1).

Filters are not programs: they have no files and no sockets. What they do get is captured stdout
and stderr (one log line per write, INFO and ERROR, attributed to the plugin), one virtual clock,
seeded randomness, and the environment variables of the VM configuration.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from abi import LogLevel, WasiClock
from abi import WasiErrno as E

from ..errors import ProcExit

if TYPE_CHECKING:
    from ..vm.instance import Vm

__all__ = ["RANDOM_GET_MAX", "Wasi"]

RANDOM_GET_MAX = 65536
"""cpp-host refuses ``random_get`` of more bytes than this with EINVAL."""

_STD = (1, 2)
_IOVEC = struct.Struct("<II")


class Wasi:
    """The WASI import implementations; ``vm`` is switched to the instance being run."""

    vm: Vm

    # -- output -----------------------------------------------------------------------------
    def _gather(self, iovs: int, iovs_len: int) -> bytes:
        mem = self.vm.memory
        parts = []
        for i in range(iovs_len):
            ptr, size = _IOVEC.unpack_from(mem.view(iovs + 8 * i, 8))
            parts.append(mem.read(ptr, size))
        return b"".join(parts)

    def _fd_write(self, fd: int, iovs: int, iovs_len: int, ret_nwritten: int) -> int:
        if fd not in _STD:
            return E.BADF
        data = self._gather(iovs, iovs_len)
        self.vm.memory.put_u32(ret_nwritten, len(data))
        if data:
            self.vm.console_write(fd, data)
            text = data[:-1] if data.endswith(b"\n") else data
            level, source = (LogLevel.INFO, "stdout") if fd == 1 else (LogLevel.ERROR, "stderr")
            ctx = self.context()
            ctx.log(level, text.decode(errors="replace"), source=source)  # one record per write, as Envoy logs it
            self.vm.host.record_console(ctx.log_record(level, "", source), data)  # and whole lines, for reading
        return E.SUCCESS

    def fd_write(self, fd: int, iovs: int, iovs_len: int, ret_nwritten: int) -> int:
        return self._fd_write(fd, iovs, iovs_len, ret_nwritten)

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, ret_nwritten: int) -> int:
        return self._fd_write(fd, iovs, iovs_len, ret_nwritten)

    def fd_read(self, fd: int, iovs: int, iovs_len: int, ret_nread: int) -> int:
        return E.NOSYS

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, ret_nread: int) -> int:
        return E.NOSYS

    def fd_seek(self, fd: int, offset: int, whence: int, ret_newoffset: int) -> int:
        self.vm.note(f"fd_seek({fd}) is not supported by proxy-wasm hosts")
        return E.SUCCESS

    def fd_close(self, fd: int) -> int:
        self.vm.note(f"fd_close({fd}) is not supported by proxy-wasm hosts")
        return E.SUCCESS

    def fd_fdstat_get(self, fd: int, ret_stat: int) -> int:
        if fd not in _STD:
            return E.BADF
        self.vm.memory.write(ret_stat, struct.pack("<BxHxxxxQQ", 0, 0, 64, 0))
        return E.SUCCESS

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        return E.NOSYS

    def fd_prestat_get(self, fd: int, ret_prestat: int) -> int:
        return E.BADF

    def fd_prestat_dir_name(self, fd: int, path: int, path_len: int) -> int:
        return E.NOSYS

    def fd_std_only(self, fd: int, *_: int) -> int:
        """Shared body of the fd calls that succeed on stdout/stderr and fail elsewhere."""
        return E.SUCCESS if fd in _STD else E.BADF

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        return E.SUCCESS

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        return self.fd_std_only(fd)

    def fd_datasync(self, fd: int) -> int:
        return self.fd_std_only(fd)

    def fd_sync(self, fd: int) -> int:
        return self.fd_std_only(fd)

    def fd_fdstat_set_rights(self, fd: int, rights_base: int, rights_inheriting: int) -> int:
        return self.fd_std_only(fd)

    def fd_filestat_get(self, fd: int, ret_stat: int) -> int:
        return E.BADF

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        return self.fd_std_only(fd)

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst_flags: int) -> int:
        return self.fd_std_only(fd)

    def fd_readdir(self, fd: int, buf: int, buf_len: int, cookie: int, ret_bufused: int) -> int:
        self.vm.memory.put_u32(ret_bufused, 0)
        return E.NOTDIR

    def fd_renumber(self, fd: int, to: int) -> int:
        return E.BADF

    def fd_tell(self, fd: int, ret_offset: int) -> int:
        if fd not in _STD:
            return E.BADF
        self.vm.memory.put_u64(ret_offset, 0)
        return E.SUCCESS

    # -- paths and sockets: no filesystem, no network -----------------------------------------
    def path_open(
        self, fd: int, dirflags: int, path: int, path_len: int, oflags: int, rights_base: int, rights_inheriting: int, fdflags: int, ret_fd: int
    ) -> int:
        return E.NOENT

    def _notsup(self, *_: int) -> int:
        return E.NOTSUP

    # no file system and no sockets: each answers NOTSUP, with the parameters the ABI table names
    def path_create_directory(self, fd: int, path: int, path_len: int) -> int:
        return self._notsup()

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        return self._notsup()

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        return self._notsup()

    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, ret_stat: int) -> int:
        return self._notsup()

    def path_filestat_set_times(self, fd: int, flags: int, path: int, path_len: int, atim: int, mtim: int, fst_flags: int) -> int:
        return self._notsup()

    def path_link(self, old_fd: int, old_flags: int, old_path: int, old_path_len: int, new_fd: int, new_path: int, new_path_len: int) -> int:
        return self._notsup()

    def path_rename(self, fd: int, old_path: int, old_path_len: int, new_fd: int, new_path: int, new_path_len: int) -> int:
        return self._notsup()

    def path_symlink(self, old_path: int, old_path_len: int, fd: int, new_path: int, new_path_len: int) -> int:
        return self._notsup()

    def sock_accept(self, fd: int, flags: int, ret_fd: int) -> int:
        return self._notsup()

    def sock_recv(self, fd: int, ri_data: int, ri_data_len: int, ri_flags: int, ret_datalen: int, ret_flags: int) -> int:
        return self._notsup()

    def sock_send(self, fd: int, si_data: int, si_data_len: int, si_flags: int, ret_datalen: int) -> int:
        return self._notsup()

    def sock_shutdown(self, fd: int, how: int) -> int:
        return self._notsup()

    def path_readlink(self, fd: int, path: int, path_len: int, buf: int, buf_len: int, ret_bufused: int) -> int:
        self.vm.memory.put_u32(ret_bufused, 0)
        return E.NOTSUP

    # -- environment, clocks, randomness -------------------------------------------------------
    def environ_sizes_get(self, ret_count: int, ret_buf_size: int) -> int:
        env = self.vm.environment
        self.vm.memory.put_u32(ret_count, len(env))
        self.vm.memory.put_u32(ret_buf_size, sum(len(k.encode()) + len(v.encode()) + 2 for k, v in env.items()))
        return E.SUCCESS

    def environ_get(self, environ_ptrs: int, environ_buf: int) -> int:
        mem = self.vm.memory
        pos = environ_buf
        for i, (k, v) in enumerate(self.vm.environment.items()):
            entry = f"{k}={v}".encode() + b"\0"
            mem.put_u32(environ_ptrs + 4 * i, pos)
            mem.write(pos, entry)
            pos += len(entry)
        return E.SUCCESS

    def args_sizes_get(self, ret_argc: int, ret_buf_size: int) -> int:
        self.vm.memory.put_u32(ret_argc, 0)
        self.vm.memory.put_u32(ret_buf_size, 0)
        return E.SUCCESS

    def args_get(self, argv: int, argv_buf: int) -> int:
        return E.SUCCESS

    def clock_time_get(self, clock_id: int, precision: int, ret_time: int) -> int:
        if clock_id not in (WasiClock.REALTIME, WasiClock.MONOTONIC):
            return E.NOTSUP
        self.vm.memory.put_u64(ret_time, self.context().current_time_ns(monotonic=clock_id == WasiClock.MONOTONIC))
        return E.SUCCESS

    def clock_res_get(self, clock_id: int, ret_res: int) -> int:
        if clock_id not in (WasiClock.REALTIME, WasiClock.MONOTONIC):
            return E.NOTSUP
        self.vm.memory.put_u64(ret_res, 1)
        return E.SUCCESS

    def random_get(self, buf: int, buf_len: int) -> int:
        if buf_len > RANDOM_GET_MAX:
            return E.INVAL
        if buf_len:
            self.vm.memory.write(buf, self.context().random_bytes(buf_len))
        return E.SUCCESS

    def sched_yield(self) -> int:
        return E.SUCCESS

    def poll_oneoff(self, subs: int, events: int, nsubs: int, ret_nevents: int) -> int:
        self.vm.memory.put_u32(ret_nevents, 0)
        return E.SUCCESS

    def proc_exit(self, code: int) -> None:
        raise ProcExit(code)
