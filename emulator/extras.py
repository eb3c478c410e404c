"""The optional dependencies, each behind an extra of ``pip install proxy-wasm-emulator[...]``, and
the error that names the extra to install.

``pip install proxy-wasm-emulator`` gives the host, ``inspect``, ``run``, ``bench`` and the guided
fuzzer. The hypothesis front doors (``fuzz_filter``, ``fuzz_test``, the state machine, the
strategies, ``fuzz --fuzzer hypothesis``) need ``[fuzz]``; the pytest plugin's
``proxy_wasm_benchmark`` fixture needs ``[pytest]``; ``serve`` needs ``[serve]``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require"]

EXTRAS: dict[str, tuple[str, str]] = {
    "hypothesis": ("hypothesis", "fuzz"),
    "pytest_benchmark": ("pytest-benchmark", "pytest"),
    "aiohttp": ("aiohttp", "serve"),
}
"""Importable name -> (distribution, extra that installs it)."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, what: str) -> None:
        package, extra = EXTRAS[module]
        super().__init__(f"{what} needs {package}: pip install 'proxy-wasm-emulator[{extra}]'", name=module)
        self.extra = extra


def require(module: str, what: str) -> ModuleType:
    """Import the optional dependency ``module``, or raise :class:`MissingExtraError` saying that
    ``what`` (e.g. ``"fuzz_filter"``) needs it and which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module, what) from None
