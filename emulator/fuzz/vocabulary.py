"""The words a fuzz run draws header names and values from: the module's own strings
(:mod:`emulator.fuzz.harvest`), the keys the filter asks the host for while the seed scenario runs,
the seed scenario's headers and the caller's ``vocabulary``. Both engines start from it; it needs
no hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import EmulatorError
from .execution import execute_scenario
from .harvest import Vocabulary, host_call_vocabulary, module_vocabulary

if TYPE_CHECKING:
    from ..host import ModuleSource
    from .options import FuzzOptions

__all__: list[str] = []


def fuzz_vocabulary(path: ModuleSource, base: dict[str, Any], parsed: Any, opts: FuzzOptions) -> Vocabulary:
    """The dictionary of one run: ``opts.vocabulary``, the seed scenario's (``parsed``) header names
    and short values, and with ``opts.harvest`` the module's strings and the keys it asks for."""
    seen_names: list[str] = list(opts.vocabulary)
    seen_values: list[str] = []
    for spec in parsed.streams:
        for msg in (spec.request, spec.response):
            for k, v in [*msg.header_pairs(), *(msg.trailer_pairs() or [])] if msg is not None else []:
                seen_names.append(k.decode(errors="replace"))
                if len(v) <= 32:
                    seen_values.append(v.decode(errors="replace"))
    vocab = module_vocabulary(path) if opts.harvest else Vocabulary()
    if opts.harvest:
        vocab = vocab.merged(_asked_for(path, base, opts.engine))
    return vocab.merged(Vocabulary(list(dict.fromkeys(seen_names)), list(dict.fromkeys(seen_values))))


def _asked_for(path: ModuleSource, base: dict[str, Any], engine: str) -> Vocabulary:
    """The header names the filter asks the host for when it runs the seed scenario (its trace)."""
    try:
        run = execute_scenario(path, base, engine=engine, invariants=[], trace=True)
    except EmulatorError:
        return Vocabulary()
    return host_call_vocabulary(run.host.trace if run.host is not None and run.host.trace is not None else [])
