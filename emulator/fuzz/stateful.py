"""The stateful fuzzer: :func:`filter_state_machine` builds a hypothesis ``RuleBasedStateMachine`` that
interleaves streams, clock advances, callout and gRPC answers, queue events and reconfigurations,
checking the invariants after every step; :func:`run_filter_state_machine` runs it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..callouts import GrpcCall
from ..errors import CallbackError, PluginStartError
from ..extras import require
from .faults import FaultInjectingObserver
from .harvest import Vocabulary, module_vocabulary
from .invariants import RunView, Violation, check, resolve_invariants, shutdown_host
from .options import STATE_MACHINE_DEFAULTS, FuzzOptions, _options
from .values import FaultPlan

if TYPE_CHECKING:
    from ..host import ModuleSource

__all__ = ["filter_state_machine", "run_filter_state_machine"]


def filter_state_machine(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> type:
    """A hypothesis ``RuleBasedStateMachine`` class for one filter (use its ``.TestCase`` in pytest).

    Rules: open a stream with generated request headers; send request body frames, trailers,
    response headers, response frames, trailers to open streams in any order Envoy allows; end a
    stream early (downstream reset); advance the virtual clock (ticks, callout timeouts); answer a
    pending HTTP callout or gRPC call with a generated answer; enqueue to a registered shared queue;
    reconfigure the plugin with a generated configuration (new root context on the same VM, as
    Envoy does on a config update). The ``end`` invariants run after every step, ``shutdown`` ones
    at teardown. Header names mix ``vocabulary`` and (``harvest``) the module's strings with random
    ones, as in :func:`fuzz_filter`.

    ``options`` (default :data:`STATE_MACHINE_DEFAULTS`) and keyword ``overrides`` are
    :class:`FuzzOptions` (``max_open_streams`` is an older name of ``max_streams``): ``root_id``,
    ``plugin_config``, ``vm_config``, ``environment``, ``properties``, ``engine``, ``seed`` (the host), ``invariants`` minus
    ``exclude``, ``adversarial``, ``vocabulary``, ``harvest``, ``fuzz_config``/``config_schema``
    (the first configuration is drawn too), ``faults`` and ``max_streams`` (open at once).
    """
    require("hypothesis", "filter_state_machine")
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

    from ..host import Host
    from .strategies import callout_responses, fault_plans, grpc_responses, plugin_configs, plugin_configs_from_schema

    if "max_open_streams" in overrides:
        overrides["max_streams"] = overrides.pop("max_open_streams")
    opts = _options("filter_state_machine", options, STATE_MACHINE_DEFAULTS, overrides, refuses=("scenario",))
    engine, seed, root_id, properties, adversarial, faults = opts.engine, opts.seed, opts.root_id or "", opts.properties, opts.adversarial, opts.faults
    max_open_streams = opts.max_streams
    invs = [i for i in resolve_invariants(opts.invariants, exclude=opts.exclude) if i.when != "repeat"]
    vocab = (module_vocabulary(path) if opts.harvest else Vocabulary()).merged(Vocabulary(list(opts.vocabulary)))
    from .strategies import bodies, trailers
    from .strategies import request_headers as req_headers
    from .strategies import response_headers as resp_headers

    names_v, values_v = vocab.names, vocab.values
    config_base = opts.plugin_config_bytes()
    schema = opts.config_schema
    configs = plugin_configs_from_schema(schema) if schema is not None else plugin_configs(vocabulary=values_v, base=config_base)
    draw_first_config = opts.fuzz_config or opts.config_schema is not None
    filter_path = path

    def _open(machine: Any) -> list[Any]:
        return [s for s in machine.streams if not s.completed]

    class FilterStateMachine(RuleBasedStateMachine):
        """Interleaved traffic, time and callouts through one filter."""

        def __init__(self) -> None:
            super().__init__()
            self.host: Host | None = None
            self.plugin: Any = None
            self.retired: list[Any] = []
            self.streams: list[Any] = []
            self.start_error: PluginStartError | None = None
            self.observer: FaultInjectingObserver | None = None

        @initialize(data=st.data())
        def start(self, data: Any) -> None:
            host = self.host = Host(engine=engine, seed=seed, trace=True, trace_limit=200)
            if faults:
                imported = [i.name for i in host.program(filter_path).info.imports if i.module == "env"]
                plan = data.draw(fault_plans(imported), label="host faults") if imported else FaultPlan()
                if plan:
                    self.observer = FaultInjectingObserver(host, plan)
                    host.observer = self.observer
            config = data.draw(configs, label="configuration") if draw_first_config else config_base
            try:
                self.plugin = host.load(
                    filter_path, root_id=root_id, plugin_config=config, properties=properties, vm_config=opts.vm_config, environment=opts.environment
                )
            except PluginStartError as exc:
                self.start_error = exc

        def _view(self) -> RunView:
            assert self.host is not None
            return RunView(self.host, list(self.host.plugins), list(self.streams), self.start_error)

        def _fail(self, violations: list[Violation]) -> None:
            if violations:
                tail = self.host.trace.tail(10) if self.host is not None and self.host.trace is not None else ""
                raise AssertionError("\n".join(map(str, violations)) + (f"\nlast host calls:\n{tail}" if tail else ""))

        @invariant()
        def host_lint(self) -> None:
            if self.host is not None:
                self._fail(check(self._view(), invs, "end"))

        def _pick(self, data: Any, candidates: list[Any], what: str) -> Any:
            return data.draw(st.sampled_from(candidates), label=what)

        @precondition(lambda self: self.plugin is not None and len(_open(self)) < max_open_streams)
        @rule(data=st.data())
        def new_stream(self, data: Any) -> None:
            headers = data.draw(req_headers(vocabulary=names_v, value_vocabulary=values_v, adversarial=adversarial), label="request headers")
            eos = data.draw(st.booleans(), label="end_of_stream")
            stream = self.plugin.http_stream()
            self.streams.append(stream)
            stream.send_request_headers(headers, end_of_stream=eos)

        def _body_candidates(self, side: str) -> list[Any]:
            return [s for s in _open(self) if getattr(s, side).received_headers is not None and not getattr(s, side).ended and not getattr(s, side).done]

        @precondition(lambda self: bool(self._body_candidates("request")))
        @rule(data=st.data())
        def request_body(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("request"), "stream")
            s.send_request_body(data.draw(bodies(max_size=256), label="frame"), end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("request")))
        @rule(data=st.data())
        def request_trailers(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("request"), "stream")
            s.send_request_trailers(data.draw(trailers(vocabulary=names_v, adversarial=adversarial), label="trailers"))

        def _respondable(self) -> list[Any]:
            return [s for s in _open(self) if not s.response.done and s.response.received_headers is None and (s.request.headers_sent or s.mode != "filter")]

        @precondition(lambda self: bool(self._respondable()))
        @rule(data=st.data())
        def response_headers(self, data: Any) -> None:
            s = self._pick(data, self._respondable(), "stream")
            headers = data.draw(resp_headers(vocabulary=names_v, value_vocabulary=values_v, adversarial=adversarial), label="response headers")
            s.send_response_headers(headers, end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("response")))
        @rule(data=st.data())
        def response_body(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("response"), "stream")
            s.send_response_body(data.draw(bodies(max_size=256), label="frame"), end_of_stream=data.draw(st.booleans(), label="end_of_stream"))

        @precondition(lambda self: bool(self._body_candidates("response")))
        @rule(data=st.data())
        def response_trailers(self, data: Any) -> None:
            s = self._pick(data, self._body_candidates("response"), "stream")
            s.send_response_trailers(data.draw(trailers(vocabulary=names_v, adversarial=adversarial), label="trailers"))

        @precondition(lambda self: bool(_open(self)))
        @rule(data=st.data())
        def end_stream(self, data: Any) -> None:
            self._pick(data, _open(self), "stream").complete()

        @precondition(lambda self: self.host is not None)
        @rule(ms=st.sampled_from([1, 10, 100, 1000, 5000]))
        def advance(self, ms: int) -> None:
            assert self.host is not None
            self.host.advance(ms)

        @precondition(lambda self: self.host is not None and bool(self.host.http_calls.pending()))
        @rule(data=st.data())
        def answer_http_call(self, data: Any) -> None:
            assert self.host is not None
            call = self._pick(data, self.host.http_calls.pending(), "call")
            data.draw(callout_responses(pending=False), label="answer").answer(call)

        @precondition(lambda self: self.host is not None and bool(self.host.grpc_calls.pending()))
        @rule(data=st.data())
        def answer_grpc(self, data: Any) -> None:
            assert self.host is not None
            call = self._pick(data, self.host.grpc_calls.pending(), "gRPC call")
            if isinstance(call, GrpcCall):
                data.draw(grpc_responses(pending=False), label="answer").answer(call)
                return
            what = data.draw(st.sampled_from(["message", "initial", "trailing", "close"]), label="event")
            if what == "message":
                call.send_message(data.draw(st.binary(max_size=64), label="message"))
            elif what == "initial":
                call.send_initial_metadata(data.draw(trailers(), label="metadata"))
            elif what == "trailing":
                call.send_trailing_metadata(data.draw(trailers(), label="metadata"))
            else:
                call.close(data.draw(st.integers(0, 16), label="status"))

        @precondition(lambda self: self.host is not None and bool(self.host.queues.tokens))
        @rule(data=st.data())
        def enqueue(self, data: Any) -> None:
            assert self.host is not None
            vm_id, name = self._pick(data, sorted(self.host.queues.tokens), "queue")
            self.host.queues.enqueue(name, data.draw(st.binary(max_size=64), label="item"), vm_id=vm_id)

        @precondition(lambda self: self.plugin is not None and self.plugin.vm.failed is None)
        @rule(data=st.data())
        def reconfigure(self, data: Any) -> None:
            assert self.host is not None
            config = data.draw(configs, label="new configuration")
            try:
                new = self.host.add_plugin(self.plugin.vm, root_id=root_id, plugin_config=config, properties=properties)
            except PluginStartError as exc:
                if isinstance(exc.cause, CallbackError):
                    self.start_error = exc
                return  # Envoy keeps the old configuration
            self.retired.append(self.plugin)
            self.plugin = new

        def teardown(self) -> None:
            if self.host is None:
                return
            for s in list(self.streams):
                s.complete()
            view = self._view()
            violations = check(view, invs, "end")
            shutdown_host(self.host)
            view.shut_down = True
            violations += check(view, invs, "shutdown")
            self._fail(violations)

    stem = Path(str(path)).stem if not isinstance(path, bytes | bytearray) else "bytes"
    FilterStateMachine.__name__ = "FilterStateMachine_" + re.sub(r"\W", "_", stem)
    return FilterStateMachine


def run_filter_state_machine(path: ModuleSource, options: FuzzOptions | None = None, **overrides: Any) -> None:
    """Run :func:`filter_state_machine` for ``examples`` runs of up to ``steps`` steps (derandomized).

    Raises the (with ``shrink``, minimal) failing run's error; hypothesis prints its steps.
    ``options`` (default :data:`STATE_MACHINE_DEFAULTS`) and keyword ``overrides`` are :class:`FuzzOptions`.
    """
    require("hypothesis", "run_filter_state_machine")
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    if "max_open_streams" in overrides:
        overrides["max_streams"] = overrides.pop("max_open_streams")
    opts = _options("run_filter_state_machine", options, STATE_MACHINE_DEFAULTS, overrides, refuses=("scenario",))
    machine = filter_state_machine(path, opts)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=opts.examples,
            stateful_step_count=opts.steps,
            database=None,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate, Phase.shrink] if opts.shrink else [Phase.generate],
        ),
    )
