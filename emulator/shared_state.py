"""Shared data and shared queues, scoped by vm_id, as proxy-wasm-cpp-host keeps them (abi-spec.md §1.10-1.11).

In cpp-host both live in process-global singletons. Here the :class:`~emulator.host.Host` is the
"process": every VM and plugin of one host with the same ``vm_id`` sees the same keys and queues,
and two ``Host`` objects are completely isolated from each other (so tests never leak state).
Like cpp-host, nothing is namespaced by plugin or root id, only by ``vm_id`` (which may be ``""``).

Keys, queue names and vm ids are ``str`` here. Guest bytes are decoded as UTF-8 with
``surrogateescape``, so any byte string round-trips; the Python API accepts ``str`` or ``bytes``.

Not modelled: cpp-host deletes the data and queues of a vm_id when the last VM with that vm_id is
destroyed. VMs of a host are never destroyed, so the data lives as long as the host.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from abi import Status
from abi.records import field, record

if TYPE_CHECKING:
    from .vm.instance import Vm

__all__ = ["QueueNotification", "SharedData", "SharedQueue", "SharedQueues", "as_key"]

_CAS_MASK = 0xFFFFFFFF


def as_key(value: str | bytes | bytearray) -> str:
    """A key, queue name or vm id as stored: ``str``; bytes are decoded UTF-8 (surrogateescape)."""
    if isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "surrogateescape")


def _as_bytes(value: str | bytes | bytearray) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class SharedData:
    """The key/value store of ``proxy_get_shared_data``/``proxy_set_shared_data``.

    Namespaced by vm_id; each value carries a u32 ``cas`` taken from one counter shared by every
    vm_id, which starts at 1, increments on every successful set and never takes the value 0.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, tuple[bytes, int]]] = {}
        self._next_cas = 1

    def _new_cas(self) -> int:
        cas = self._next_cas
        self._next_cas = (self._next_cas + 1) & _CAS_MASK or 1
        return cas

    def get(self, key: str | bytes, vm_id: str | bytes = "") -> tuple[bytes, int] | None:
        """``(value, cas)`` of ``key`` in ``vm_id``'s namespace, or ``None`` (the guest sees NotFound)."""
        return self._data.get(as_key(vm_id), {}).get(as_key(key))

    def set(self, key: str | bytes, value: str | bytes, vm_id: str | bytes = "", cas: int = 0) -> Status:
        """cpp-host ``SharedData::set``: CasMismatch if the key exists and ``cas`` is neither 0 nor current.

        A set on a missing key always succeeds, whatever ``cas`` is. There is no delete in the ABI;
        SDKs "remove" by setting an empty value, which stays behind.
        """
        space = self._data.setdefault(as_key(vm_id), {})
        k = as_key(key)
        current = space.get(k)
        if current is not None and cas != 0 and cas != current[1]:
            return Status.CasMismatch
        space[k] = (_as_bytes(value), self._new_cas())
        return Status.Ok

    def items(self, vm_id: str | bytes = "") -> dict[str, tuple[bytes, int]]:
        """A copy of one vm_id's namespace: ``{key: (value, cas)}``."""
        return dict(self._data.get(as_key(vm_id), {}))

    def snapshot(self) -> dict[str, dict[str, tuple[bytes, int]]]:
        """A copy of every namespace: ``{vm_id: {key: (value, cas)}}``."""
        return {vm_id: dict(space) for vm_id, space in self._data.items()}

    def __repr__(self) -> str:
        return f"<SharedData {sum(map(len, self._data.values()))} keys in {len(self._data)} vm_id(s)>"


@record
class SharedQueue:
    """One queue: its key, token, pending items and the root context that receives ``on_queue_ready``."""

    vm_id: str
    name: str
    token: int
    items: deque[bytes] = field(default_factory=deque)
    vm: Vm | None = None
    """The VM of the last registrant (``None`` until someone registers)."""
    context_id: int = 0
    """The root context id of the last registrant."""


class QueueNotification(NamedTuple):
    """One ``proxy_on_queue_ready`` posted by an enqueue, and whether the guest ran it."""

    vm_id: str
    name: str
    token: int
    context_id: int
    delivered: bool
    """False when the target VM had failed, its root context was gone or it exports no ``proxy_on_queue_ready``."""


class SharedQueues:
    """Queues keyed by ``(vm_id, name)`` with global tokens (1, 2, ...; never 0).

    ``register`` creates a queue (or finds it) and rebinds delivery to the registering root
    context: the last registrant wins and pending items stay. Each enqueue posts one
    ``proxy_on_queue_ready(root_id, token)`` to the registrant *after* the current VM call, through
    ``host.defer``, as cpp-host posts it to the registrant's dispatcher.

    ``synchronous = True`` delivers ``on_queue_ready`` immediately inside the enqueue instead (a
    re-entrant call into the registrant's VM, which cpp-host never makes): handy to step through a
    receiver, but not what Envoy does.
    """

    def __init__(self) -> None:
        self._queues: dict[int, SharedQueue] = {}
        self._tokens: dict[tuple[str, str], int] = {}
        self._next_token = 1
        self.synchronous = False
        self.notifications: list[QueueNotification] = []
        """Every posted ``on_queue_ready``, in delivery order."""

    # -- what the host calls use ----------------------------------------------------------------
    def register(self, vm: Vm, context_id: int, name: str | bytes) -> int:
        """Create or find ``(vm.vm_id, name)`` and make ``(vm, context_id)`` its receiver; returns the token."""
        key = (as_key(vm.vm_id), as_key(name))
        token = self._tokens.get(key)
        if token is None:
            token = self._new_token()
            self._tokens[key] = token
            self._queues[token] = SharedQueue(key[0], key[1], token)
        queue = self._queues[token]
        queue.vm, queue.context_id = vm, context_id
        return token

    def resolve(self, vm_id: str | bytes, name: str | bytes) -> int | None:
        """The token of ``(vm_id, name)``, ``None`` if nobody registered it."""
        return self._tokens.get((as_key(vm_id), as_key(name)))

    def push(self, token: int, data: bytes) -> Status:
        """Enqueue by token and post one ``on_queue_ready`` (NotFound for an unknown token)."""
        queue = self._queues.get(token)
        if queue is None:
            return Status.NotFound
        queue.items.append(bytes(data))
        vm, context_id = queue.vm, queue.context_id
        if vm is not None:
            action = self._notifier(queue, vm, context_id)
            if self.synchronous:
                action()
            else:
                vm.host.defer(action)
        return Status.Ok

    def pop(self, token: int) -> tuple[Status, bytes]:
        """Dequeue the FIFO head: ``(Ok, item)``, ``(Empty, b"")`` or ``(NotFound, b"")``."""
        queue = self._queues.get(token)
        if queue is None:
            return Status.NotFound, b""
        if not queue.items:
            return Status.Empty, b""
        return Status.Ok, queue.items.popleft()

    # -- Python API ----------------------------------------------------------------------------
    def enqueue(self, name: str | bytes, data: str | bytes, vm_id: str | bytes = "") -> Status:
        """Enqueue from Python (as another VM would) and deliver the ``on_queue_ready`` it posts.

        Returns NotFound if ``(vm_id, name)`` is not registered. Outside a VM call the notification
        runs before this returns (the host drains its deferred actions); inside one (e.g. from a
        foreign function) it runs after that call, as usual.
        """
        token = self.resolve(vm_id, name)
        if token is None:
            return Status.NotFound
        status = self.push(token, _as_bytes(data))
        queue = self._queues[token]
        if queue.vm is not None and all(v.current_callback is None for v in queue.vm.host.vms):
            queue.vm.host.drain()
        return status

    def contents(self, name: str | bytes, vm_id: str | bytes = "") -> list[bytes]:
        """The pending items of ``(vm_id, name)``, head first (empty if it is not registered)."""
        queue = self.queue(name, vm_id)
        return list(queue.items) if queue is not None else []

    def queue(self, name: str | bytes, vm_id: str | bytes = "") -> SharedQueue | None:
        """The queue ``(vm_id, name)`` itself (token, items, receiver), ``None`` if not registered."""
        token = self.resolve(vm_id, name)
        return self._queues[token] if token is not None else None

    @property
    def tokens(self) -> dict[tuple[str, str], int]:
        """``{(vm_id, name): token}`` of every registered queue."""
        return dict(self._tokens)

    # -- internals -----------------------------------------------------------------------------
    def _new_token(self) -> int:
        token = self._next_token
        self._next_token = (self._next_token + 1) & _CAS_MASK or 1
        return token

    def _notifier(self, queue: SharedQueue, vm: Vm, context_id: int) -> Callable[[], None]:
        """The posted action; the target is captured at enqueue time, as cpp-host's lambda does."""

        def deliver() -> None:
            ctx = vm.contexts.get(context_id)
            ready = vm.failed is None and ctx is not None and ctx.is_root and vm.has_export("proxy_on_queue_ready")
            self.notifications.append(QueueNotification(queue.vm_id, queue.name, queue.token, context_id, ready))
            if not ready:
                return
            assert ctx is not None
            ctx.run("proxy_on_queue_ready", context_id, queue.token)

        return deliver

    def __repr__(self) -> str:
        return f"<SharedQueues {len(self._queues)} queue(s)>"
