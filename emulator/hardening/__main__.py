"""``python -m emulator.hardening hostile|mutants ...``: the campaigns at any size."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
