"""What a generated example is drawn from: the dictionary, the seed scenario's streams (mutated) and
generated exchanges, plugin configurations and host fault plans.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import strategies as st

from abi.records import record, replace

from ..http.messages import Message
from .harvest import Vocabulary
from .strategies import (
    Exchange,
    FaultPlan,
    chunkings,
    exchanges,
    fault_plans,
    header_names,
    header_values,
    plugin_configs,
    plugin_configs_from_schema,
    scenario_bytes,
)
from .vocabulary import fuzz_vocabulary

if TYPE_CHECKING:
    from ..host import ModuleSource
    from .options import FuzzOptions

__all__: list[str] = []


_M = TypeVar("_M", bound=Message)


def _editable(message: _M) -> _M:
    """A copy of a parsed message whose header list can be edited in place."""
    return replace(message, headers=message.header_pairs(), trailers=message.trailer_pairs(), chunks=copy.copy(message.chunks))


@st.composite
def _mutated_stream(draw: st.DrawFn, base: Any, names: st.SearchStrategy[str], values: st.SearchStrategy[bytes]) -> dict[str, Any]:
    """A stream of the seed scenario with a few edits: headers added, dropped or changed, body re-cut."""
    req = _editable(base.request)
    resp = _editable(base.response) if base.response is not None else None
    for _ in range(draw(st.integers(0, 3))):
        target = req if resp is None or draw(st.booleans()) else resp
        op = draw(st.sampled_from(["add", "drop", "change", "rechunk"]))
        required = {b":method", b":path", b":authority", b":status"}
        optional = [i for i, (k, _) in enumerate(target.headers) if k not in required]
        if op == "add":
            target.headers.append((draw(names).encode(), draw(values)))
        elif op == "drop" and optional:
            del target.headers[draw(st.sampled_from(optional))]
        elif op == "change" and target.headers:
            i = draw(st.integers(0, len(target.headers) - 1))
            k, _ = target.headers[i]
            if k not in required:
                target.headers[i] = (k, draw(values))
        elif op == "rechunk":
            frames = draw(chunkings(target.body_bytes()))
            target.chunks = [len(f) for f in frames] or None
    ex = Exchange(req, resp, base.advance_ms)
    out = ex.to_scenario(base.name)
    if base.plugin is not None:
        out["plugin"] = base.plugin
    return out


@record
class _CaseSpace:
    """Everything the example strategy needs."""

    base: dict[str, Any]
    base_streams: list[Any]
    vocabulary: Vocabulary
    adversarial: bool
    max_streams: int
    configs: st.SearchStrategy[bytes] | None
    faults: st.SearchStrategy[FaultPlan] | None
    advance: tuple[float, ...] = (0, 0, 100, 1000, 5000)

    def strategy(self) -> st.SearchStrategy[tuple[dict[str, Any], FaultPlan | None]]:
        vocab = self.vocabulary
        generated = exchanges(vocabulary=vocab.names, value_vocabulary=vocab.values, adversarial=self.adversarial).map(lambda e: e.to_scenario())
        stream = generated
        if self.base_streams:
            names = header_names(vocab.names, adversarial=self.adversarial)
            values = header_values(vocab.values, adversarial=self.adversarial)
            stream = st.one_of(st.sampled_from(self.base_streams).flatmap(lambda b: _mutated_stream(b, names, values)), generated)

        streams = st.lists(stream, min_size=1, max_size=self.max_streams)
        advance = st.sampled_from(self.advance)

        @st.composite
        def case(draw: st.DrawFn) -> tuple[dict[str, Any], FaultPlan | None]:
            sc = copy.deepcopy(self.base)
            sc["streams"] = draw(streams)
            adv = draw(advance)
            if adv:
                sc["advance_ms"] = adv
            else:
                sc.pop("advance_ms", None)
            if self.configs is not None:
                config = draw(self.configs)
                target = sc["plugins"][0] if "plugins" in sc else sc.setdefault("plugin", {})
                target["configuration"] = scenario_bytes(config)
            plan = draw(self.faults) if self.faults is not None else None
            return sc, plan

        return case()


def _case_space(path: ModuleSource, base: dict[str, Any], parsed: Any, opts: FuzzOptions) -> _CaseSpace:
    """What examples are drawn from: the dictionary, the seed scenario, configurations, faults."""
    vocab = fuzz_vocabulary(path, base, parsed, opts)
    configs = None
    if opts.config_schema is not None:
        configs = plugin_configs_from_schema(opts.config_schema)
    elif opts.fuzz_config:
        configs = plugin_configs(vocabulary=vocab.values, base=parsed.plugins[0].configuration if parsed.plugins else None)
    fault_strategy = None
    if opts.faults:
        imported = _imported(path, opts.engine)
        fault_strategy = fault_plans(imported, min_rules=1) if imported else None  # minimizing drops the rules a finding does not need
    return _CaseSpace(base, parsed.streams, vocab, opts.adversarial, opts.max_streams, configs, fault_strategy)


def _imported(path: ModuleSource, engine: str) -> list[str]:
    """The ``env`` functions the module imports (where host faults can be injected)."""
    from ..host import Host

    return [i.name for i in Host(engine=engine, trace=False).program(path).info.imports if i.module == "env"]
