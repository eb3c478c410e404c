"""``python -m emulator.hardening hostile|mutants ...``: the campaigns at any size."""

from __future__ import annotations

import sys

from .hostile import main

sys.exit(main())
