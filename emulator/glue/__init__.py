"""ABI glue: one small method per ``env.proxy_*`` import, one mixin per host-call family.

A method reads its arguments from guest memory, asks the semantic objects (VM, plugin, stream,
host) to act, writes results back and returns a status. Pointer arithmetic lives only here.
"""

from __future__ import annotations

from .buffers import BufferCalls
from .callouts import CalloutCalls
from .context_control import ContextCalls
from .foreign import ForeignCalls
from .logging_time import LoggingTimeCalls
from .maps import MapCalls
from .metrics import MetricCalls
from .properties import PropertyCalls
from .shared_state import SharedStateCalls
from .stream_control import StreamControlCalls
from .wasi import Wasi

__all__ = ["ImportCalls"]


class ImportCalls(
    LoggingTimeCalls, BufferCalls, MapCalls, CalloutCalls, StreamControlCalls, PropertyCalls, ContextCalls, SharedStateCalls, MetricCalls, ForeignCalls, Wasi
):
    """Every import implementation, bound to whichever VM is running (``self.vm``)."""
