"""The instance layer: a compiled program and its instances, with no Envoy semantics.

- :mod:`.module` reads a module's outline (the binary format), :mod:`.rewrite` exports its
  mutable globals for snapshots, :mod:`.cache` keeps compiled artifacts on disk;
- :mod:`.program` compiles and links a module against the glue's import table;
- :mod:`.instance` is one VM: memory, the guest allocator, export calls, the stack of running
  contexts, traps with backtraces, snapshots; :mod:`.costs` meters its callbacks.
"""

from __future__ import annotations

from .instance import ALLOCATOR_IMPORTS, START_IMPORTS, Vm, VmFailedError

__all__ = ["ALLOCATOR_IMPORTS", "START_IMPORTS", "Vm", "VmFailedError"]
