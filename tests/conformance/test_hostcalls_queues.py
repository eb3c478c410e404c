"""Shared queues: register/resolve/enqueue/dequeue and on_queue_ready delivery (abi-spec.md §1.11, §5.6).

``fixtures/wat/queue_receiver.wasm`` registers the queue named by its plugin configuration in
``on_configure``; its ``on_queue_ready`` dequeues until Empty and logs each item, then "empty".
"""

from __future__ import annotations

import pytest

from abi import Status
from emulator import CallbackError
from emulator.contexts import ContextBase
from tests.conftest import wat_module
from tests.hostcall_harness import RET_LEN, RET_PTR, Harness

TOKEN = 16
BAD = 2**31


@pytest.fixture
def h(proxy_wasm_engine):
    return Harness(proxy_wasm_engine, vm_id="a", root_id="sender")


def register(h, name, *, ctx=None):
    h.mem.write(TOKEN, b"\xaa" * 4)
    status = h.call("proxy_register_shared_queue", *h.put(name), TOKEN, context_id=ctx)
    return status, h.mem.u32(TOKEN)


def resolve(h, vm_id, name):
    h.mem.write(TOKEN, b"\xaa" * 4)
    status = h.call("proxy_resolve_shared_queue", *h.put(vm_id), *h.put(name), TOKEN)
    return status, h.mem.u32(TOKEN)


def dequeue(h, token):
    status = h.call("proxy_dequeue_shared_queue", token, RET_PTR, RET_LEN)
    return status, h.returned() if status == Status.Ok else None


def receiver(h, name="events", *, vm_id="a", root_id="receiver"):
    return h.host.load(wat_module("queue_receiver"), vm_id=vm_id, root_id=root_id, plugin_config=name)


def messages(plugin):
    return [r.message for r in plugin.logs]


def test_register_creates_or_returns_the_token(h):
    assert register(h, "q1") == (Status.Ok, 1)  # tokens start at 1
    assert register(h, "q1") == (Status.Ok, 1)  # same (vm_id, name): same token
    assert register(h, "q2") == (Status.Ok, 2)
    assert register(h, b"") == (Status.Ok, 3)  # any name, even empty, is fine
    assert h.host.queues.tokens == {("a", "q1"): 1, ("a", "q2"): 2, ("a", ""): 3}


def test_register_binds_delivery_to_the_root_context(h):
    root = h.plugin.root_context_id
    stream = h.vm.contexts[99] = ContextBase()  # a stream context of the plugin
    stream.id, stream.parent_id, stream.vm, stream.host, stream.root = 99, root, h.vm, h.host, h.plugin
    assert register(h, "q", ctx=99) == (Status.Ok, 1)
    queue = h.host.queues.queue("q", vm_id="a")
    assert (queue.vm, queue.context_id, queue.token) == (h.vm, root, 1)


def test_resolve(h):
    register(h, "q")
    assert resolve(h, "", "q") == (Status.Ok, 1)  # empty vm_id: the caller's own
    assert resolve(h, "a", "q") == (Status.Ok, 1)
    assert resolve(h, "", "nope") == (Status.NotFound, 0xAAAAAAAA)  # the token is not written
    assert resolve(h, "b", "q") == (Status.NotFound, 0xAAAAAAAA)
    assert h.host.queues.resolve("a", "q") == 1 and h.host.queues.resolve("b", "q") is None


def test_tokens_are_global_across_vm_ids(h):
    other = h.host.create_vm(wat_module("hostcalls"), vm_id="b")
    p2 = h.host.add_plugin(other, root_id="x")
    register(h, "q")
    other.memory.write(1024, b"q")
    assert other.call("t_proxy_register_shared_queue", 1024, 1, TOKEN, context_id=p2.root_context_id) == Status.Ok
    assert other.memory.u32(TOKEN) == 2  # a different queue: ("b", "q")
    assert resolve(h, "b", "q") == (Status.Ok, 2)  # reachable from vm_id "a" by naming "b"


def test_enqueue_and_dequeue_statuses(h):
    assert h.call("proxy_enqueue_shared_queue", 7, *h.put("x")) == Status.NotFound
    assert dequeue(h, 7) == (Status.NotFound, None)
    _, token = register(h, "q")
    assert dequeue(h, token) == (Status.Empty, None)
    for item in (b"one", b"", b"\x00two"):
        assert h.call("proxy_enqueue_shared_queue", token, *h.put(item)) == Status.Ok
    assert h.host.queues.contents("q", vm_id="a") == [b"one", b"", b"\x00two"]
    assert dequeue(h, token) == (Status.Ok, b"one")  # FIFO
    heap = h.vm.export("heap")()
    assert dequeue(h, token) == (Status.Ok, b"")
    assert h.mem.u32(RET_PTR) == 0 and h.vm.export("heap")() == heap  # an empty item: ptr 0, no allocation
    assert dequeue(h, token) == (Status.Ok, b"\x00two")
    assert dequeue(h, token) == (Status.Empty, None)


def test_enqueue_posts_on_queue_ready_after_the_call(h):
    rx = receiver(h)
    assert messages(rx) == ["registered"]
    status, token = resolve(h, "", "events")
    assert (status, token) == (Status.Ok, 1)
    assert h.call("proxy_enqueue_shared_queue", token, *h.put("first")) == Status.Ok
    assert h.call("proxy_enqueue_shared_queue", token, *h.put("second")) == Status.Ok
    assert messages(rx) == ["registered"]  # never re-entrant: posted, not run
    assert h.host.queues.contents("events", vm_id="a") == [b"first", b"second"]
    h.host.drain()
    # one notification per enqueue: the first drains both items, the second finds the queue empty
    assert messages(rx) == ["registered", "first", "second", "empty", "empty"]
    assert rx.vm.export("last_root")() == rx.root_context_id and rx.vm.export("last_token")() == token
    assert [(n.token, n.context_id, n.delivered) for n in h.host.queues.notifications] == [(1, rx.root_context_id, True)] * 2


def test_last_registrant_wins_and_items_are_kept(h):
    first = receiver(h, root_id="first")
    h.host.queues.enqueue("events", "to-first", vm_id="a")
    assert messages(first)[-2:] == ["to-first", "empty"]
    # the harness plugin re-registers: it does not export proxy_on_queue_ready, so items stay
    assert register(h, "events") == (Status.Ok, 1)
    assert h.host.queues.enqueue("events", "kept", vm_id="a") == Status.Ok
    assert h.host.queues.contents("events", vm_id="a") == [b"kept"]
    assert h.host.queues.notifications[-1].delivered is False
    # a new VM with the same vm_id registers last and receives the pending item with the new one
    second = receiver(h, root_id="second")
    assert h.host.queues.tokens == {("a", "events"): 1}
    h.host.queues.enqueue("events", "new", vm_id="a")
    assert messages(second) == ["registered", "kept", "new", "empty"]
    assert messages(first) == ["registered", "to-first", "empty"]


def test_cross_vm_id_enqueue_reaches_the_registrant(h):
    rx = receiver(h, vm_id="b")
    assert resolve(h, "", "events")[0] == Status.NotFound
    status, token = resolve(h, "b", "events")
    assert status == Status.Ok
    h.call("proxy_enqueue_shared_queue", token, *h.put("hello b"))
    h.host.drain()
    assert messages(rx) == ["registered", "hello b", "empty"]


def test_failed_registrant_vm_is_skipped(h):
    rx = receiver(h)
    h.host.foreign_functions.register("boom", lambda args: 1 / 0)
    with pytest.raises(CallbackError) as info:
        h.call("proxy_call_foreign_function", *h.put("boom"), 0, 0, RET_PTR, RET_LEN)
    rx.vm.failed = info.value  # as if the receiver had trapped
    assert h.host.queues.enqueue("events", "lost", vm_id="a") == Status.Ok
    assert messages(rx) == ["registered"]
    assert h.host.queues.notifications[-1].delivered is False
    assert h.host.queues.contents("events", vm_id="a") == [b"lost"]


def test_synchronous_switch_delivers_inside_enqueue(h):
    rx = receiver(h)
    h.host.queues.synchronous = True
    token = resolve(h, "", "events")[1]
    assert h.call("proxy_enqueue_shared_queue", token, *h.put("now")) == Status.Ok
    assert messages(rx) == ["registered", "now", "empty"]  # before any drain (not what cpp-host does)


def test_python_api(h):
    rx = receiver(h)
    queues = h.host.queues
    assert queues.enqueue("nope", "x", vm_id="a") == Status.NotFound
    assert queues.enqueue("events", b"from-test", vm_id="a") == Status.Ok
    assert messages(rx) == ["registered", "from-test", "empty"]  # delivered before enqueue returns
    assert queues.contents("events", vm_id="a") == [] and queues.contents("nope") == []
    assert queues.queue("nope") is None
    assert queues.tokens == {("a", "events"): 1}


def test_bad_pointers(h):
    assert h.call("proxy_register_shared_queue", BAD, 4, TOKEN) == Status.InvalidMemoryAccess
    assert h.call("proxy_register_shared_queue", *h.put("q"), BAD) == Status.InvalidMemoryAccess
    assert h.call("proxy_resolve_shared_queue", BAD, 4, *h.put("q"), TOKEN) == Status.InvalidMemoryAccess
    assert h.call("proxy_resolve_shared_queue", 0, 0, *h.put("q"), BAD) == Status.InvalidMemoryAccess
    assert h.call("proxy_enqueue_shared_queue", 1, BAD, 4) == Status.InvalidMemoryAccess
    h.host.queues.enqueue("q", "item", vm_id="a")
    assert h.call("proxy_dequeue_shared_queue", 1, BAD, RET_LEN) == Status.InvalidMemoryAccess
