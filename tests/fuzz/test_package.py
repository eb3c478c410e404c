"""``emulator.fuzz`` and ``emulator.hardening`` export exactly what their modules export."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

NOT_IN_API = {
    # strategies, invariants and the JSON Schema generator are imported as modules (``from emulator.fuzz import strategies``)
    "emulator.fuzz": {"strategies", "invariants", "schema"},
    # the ``python -m`` entry point
    "emulator.hardening": {"__main__"},
}


@pytest.mark.parametrize("name", sorted(NOT_IN_API))
def test_the_package_exports_the_union_of_its_modules(name):
    package = importlib.import_module(name)
    modules = [importlib.import_module(f"{name}.{m.name}") for m in pkgutil.iter_modules(package.__path__) if m.name not in NOT_IN_API[name]]
    union = [export for module in modules for export in module.__all__]
    assert sorted(package.__all__) == sorted(union)
    assert len(union) == len(set(union))
    for export in package.__all__:
        assert getattr(package, export) is not None, export
