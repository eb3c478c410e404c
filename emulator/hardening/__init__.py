"""Hardening campaigns: hostile guests (host calls with adversarial arguments, in every phase)
and malformed modules (mutants of the fixtures), each checking that the host never crashes.

Run them on demand with ``python -m emulator.hardening hostile|mutants ...``.
"""

from __future__ import annotations

from . import hostile as _hostile
from .hostile import *  # noqa: F403  (the campaigns' __all__ is this package's API)

__all__ = list(_hostile.__all__)
