"""How far to move the emulator's fake clock (time_scale 1, so clock seconds are emulated seconds)."""

from __future__ import annotations

HOURS = 3600.0
DONE = 10 * 86_400.0  # clock seconds after which any batch of the tests has ended
VALIDATION = 300.0  # the emulator's default validation time
PER_REQUEST = 60.0  # the emulator's default time per request
