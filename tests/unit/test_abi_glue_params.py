"""Every glue method takes exactly the parameters the ABI table names, for ``env`` and WASI alike.

The table in ``abi/signatures.py`` is the one place that says what each parameter is; the glue
(``emulator.glue.ImportCalls``, whose WASI methods live in ``emulator/wasi.py``) must not
disagree with it, or a trace, the hostile fuzzer and a reader of the glue see different calls.
"""

from __future__ import annotations

import inspect

import pytest

from abi import HOST_FUNCTIONS, WASI_FUNCTIONS
from emulator.glue import ImportCalls

NOT_IMPLEMENTED = {
    "envoy_resolve_dns": "Envoy-only DNS extension: the loader links a stub that raises HostCallNotImplemented",
}
"""Imports of the table without a glue method (``implemented_functions`` leaves them out)."""

# A glue method whose parameters may differ from the table, with why; the test fails for a line
# that no longer mismatches, so the list cannot go stale.
KNOWN_MISMATCHES: dict[str, str] = {}  # import name -> the glue signature that differs (keep empty)

IMPORTS = [pytest.param(name, sig, id=f"env.{name}") for name, sig in HOST_FUNCTIONS.items()]
IMPORTS += [pytest.param(name, sig, id=f"wasi.{name}") for name, sig in WASI_FUNCTIONS.items()]


def glue_parameters(name: str) -> list[inspect.Parameter] | None:
    """The parameters of ``ImportCalls.<name>`` after ``self`` (``None`` if there is no such method)."""
    method = getattr(ImportCalls, name, None)
    if method is None:
        return None
    params = list(inspect.signature(method).parameters.values())
    assert params and params[0].name == "self", f"ImportCalls.{name} is not a plain method: {inspect.signature(method)}"
    return params[1:]


@pytest.mark.parametrize(("name", "sig"), IMPORTS)
def test_glue_parameters_equal_the_table(name, sig):
    params = glue_parameters(name)
    if name in NOT_IMPLEMENTED:
        assert params is None, f"ImportCalls.{name} exists now: remove it from NOT_IMPLEMENTED"
        return
    assert params is not None, f"no glue method ImportCalls.{name} for the table's {sig.describe()}"
    got = [p.name for p in params]
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    if name in KNOWN_MISMATCHES:
        assert not (plain and got == list(sig.param_names)), f"{name} matches the table now: remove it from KNOWN_MISMATCHES"
        return
    assert plain, f"ImportCalls.{name}{inspect.signature(getattr(ImportCalls, name))}: every parameter must be a plain positional one"
    assert got == list(sig.param_names), f"ImportCalls.{name} takes {got}, the ABI table says {list(sig.param_names)}"


def test_the_allow_lists_name_only_imports_of_the_table():
    known = HOST_FUNCTIONS.keys() | WASI_FUNCTIONS.keys()
    assert set(NOT_IMPLEMENTED) <= known
    assert set(KNOWN_MISMATCHES) <= known
    assert not set(NOT_IMPLEMENTED) & set(KNOWN_MISMATCHES)
