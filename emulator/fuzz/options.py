"""One set of options for every fuzzing front door: :class:`FuzzOptions`, and the defaults each front
door starts from (:data:`FUZZ_TEST_DEFAULTS`, :data:`STATE_MACHINE_DEFAULTS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abi.records import record, record_fields, replace

if TYPE_CHECKING:
    from .invariants import Invariant, RunView

__all__ = ["FUZZ_TEST_DEFAULTS", "STATE_MACHINE_DEFAULTS", "FuzzOptions"]


@record(frozen=True)
class FuzzOptions:
    """What to fuzz and how: one set of options for every front door.

    :func:`fuzz_filter`, :func:`fuzz_test`, :func:`filter_state_machine` (and
    :func:`run_filter_state_machine`) and ``proxy-wasm-emulator fuzz`` take a ``FuzzOptions``; the
    Python front doors also take its fields as keyword arguments, applied over it
    (``fuzz_filter(path, options, seed=2)``). Without one, a front door starts from its defaults:
    this class's for :func:`fuzz_filter` and the command line, :data:`FUZZ_TEST_DEFAULTS` for
    :func:`fuzz_test` (no leak check), :data:`STATE_MACHINE_DEFAULTS` for the state machine
    (well-formed traffic, 4 open streams, 50 runs). A field a front door has no use for is
    ignored there, except ``scenario`` and ``properties``, which describe the filter's world:
    a front door that cannot apply them refuses them (``ValueError``).
    """

    examples: int = 100
    """Examples to generate: :func:`fuzz_filter` (shrinking runs more; 0 only checks the seed
    scenario) and :func:`run_filter_state_machine` (runs). :func:`fuzz_test` leaves the count to
    hypothesis's ``settings(max_examples=...)``."""
    seed: int = 0
    """Seeds the host; :func:`fuzz_filter` seeds hypothesis with it too (the other front doors take
    hypothesis's seed from its settings)."""
    engine: str = "wasmtime"
    """The wasm engine (:data:`emulator.engines.ENGINE_NAMES`)."""
    root_id: str | None = None
    """The plugin's root_id (``None``: the seed scenario's, else empty)."""
    plugin_config: bytes | str | None = None
    """The plugin configuration (``None``: the seed scenario's, else empty). With ``fuzz_config``
    it is also the base that generated configurations truncate."""
    vm_config: bytes | str | None = None
    """The VM configuration (``None``: the seed scenario's, else empty)."""
    environment: dict[str, str] | None = None
    """Environment variables of the VM, over the seed scenario's."""
    scenario: str | Path | dict[str, Any] | None = None
    """A seed scenario (file or dict) for :func:`fuzz_filter` and :func:`fuzz_test`: its streams are
    checked first, then mutated alongside generated ones; its plugins, properties, responders and
    shared data apply to every example."""
    properties: dict[str, Any] | None = None
    """Properties of the state machine's plugin (the scenario-driven front doors take them from
    the seed scenario)."""
    invariants: tuple[Invariant | str | Callable[[RunView], Any], ...] | None = None
    """Invariants to check: names, :class:`~emulator.fuzz.invariants.Invariant` objects or callables
    (``None``: the built-in ones plus registered ones)."""
    exclude: tuple[str, ...] = ()
    """Names of invariants not to check."""
    adversarial: bool = True
    """Odd header maps, bodies and statuses as well as well-formed ones (the command line's
    ``--well-formed`` turns it off)."""
    max_streams: int = 3
    """Exchanges per example; in the state machine, streams open at once."""
    vocabulary: tuple[str, ...] = ()
    """Extra words for the header dictionary."""
    harvest: bool = True
    """Add the strings of the module's data segments to the dictionary (:func:`module_vocabulary`)."""
    fuzz_config: bool = False
    """Fuzz the plugin configuration too (:func:`~emulator.fuzz.strategies.plugin_configs`)."""
    config_schema: dict[str, Any] | bool | None = None
    """Generate configurations valid against this JSON Schema (:mod:`emulator.fuzz.schema`);
    implies ``fuzz_config``."""
    faults: bool = False
    """Inject host-call errors (:func:`~emulator.fuzz.strategies.fault_plans`)."""
    coverage: bool = False
    """Measure guest coverage (basic blocks, :mod:`emulator.vm.coverage`; wasmtime only): hypothesis
    is steered toward examples that enter more of the filter, the leak check runs once per new
    coverage, and the report says how much of the guest the run entered."""
    leak_repeats: int = 24
    """Replays per example for the ``memory_growth`` invariant (0 turns it off; the state machine
    has no replays)."""
    leak_warmup: int = 4
    """Replays before ``memory_growth`` starts measuring."""
    time_budget_s: float | None = None
    """:func:`~emulator.fuzz.guided.guided_fuzz`: stop generating after this many seconds even if
    ``examples`` executions have not run (findings are still shrunk and replayed after it)."""
    find_all: bool = True
    """:func:`fuzz_filter`: keep fuzzing for other invariants after the first finding."""
    shrink: bool = True
    """Shrink a failure to a minimal example (:func:`fuzz_filter` and
    :func:`run_filter_state_machine`; :func:`fuzz_test` follows hypothesis's settings)."""
    steps: int = 30
    """:func:`run_filter_state_machine`: steps per run at most."""

    def __post_init__(self) -> None:
        for name in ("invariants", "exclude", "vocabulary"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                if isinstance(value, str | bytes):
                    raise TypeError(f"FuzzOptions.{name} is a list of names, not one string {value!r}")
                object.__setattr__(self, name, tuple(value))
        for name, least in (("examples", 0), ("leak_repeats", 0), ("leak_warmup", 0), ("max_streams", 1), ("steps", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"FuzzOptions.{name} must be an integer >= {least}, not {value!r}")

    def replace(self, **changes: Any) -> FuzzOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def plugin_config_bytes(self) -> bytes | None:
        """:attr:`plugin_config` as bytes (``None`` if unset)."""
        return self.plugin_config.encode() if isinstance(self.plugin_config, str) else self.plugin_config


FUZZ_TEST_DEFAULTS = FuzzOptions(leak_repeats=0)
"""Where :func:`fuzz_test` starts: no leak check (24 replays of every example would slow a test down)."""

STATE_MACHINE_DEFAULTS = FuzzOptions(examples=50, adversarial=False, max_streams=4)
"""Where :func:`filter_state_machine` starts: well-formed traffic, 4 open streams, 50 runs."""

_FIELDS = frozenset(f.name for f in record_fields(FuzzOptions))


def _options(door: str, options: FuzzOptions | None, defaults: FuzzOptions, overrides: dict[str, Any], *, refuses: Sequence[str] = ()) -> FuzzOptions:
    """``options`` (or the front door's ``defaults``) with keyword ``overrides`` applied."""
    if options is not None and not isinstance(options, FuzzOptions):
        raise TypeError(f"{door}() takes a FuzzOptions as options, not {type(options).__name__}")
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TypeError(f"{door}() got an unexpected keyword argument {unknown[0]!r} (FuzzOptions fields: {', '.join(sorted(_FIELDS))})")
    opts = replace(options if options is not None else defaults, **overrides) if overrides else (options if options is not None else defaults)
    for name in refuses:
        if getattr(opts, name) is not None:
            raise ValueError(f"{door}() cannot apply FuzzOptions.{name}" + (": put them in the seed scenario" if name == "properties" else ""))
    return opts
