"""API faults injected per request (`AOAI_EMULATOR_FAULTS`), e.g. `429:0.2,503:0.1,drop:0.05,latency_ms:50`.

Keys: `429`, `500`, `503`, `drop` (the connection is cut mid-answer) and `token_limit_exceeded` are shares
of requests in [0, 1]; `latency_ms` delays every answer; `retry_after` is the seconds a 429 asks to wait.
Draws come from a generator seeded by `fault_seed`, so a run is repeatable.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

RATE_KEYS = ("429", "500", "503", "drop")
ALIASES = {"token_limit": "token_limit_exceeded", "latency": "latency_ms"}
KNOWN = {*RATE_KEYS, "token_limit_exceeded", "latency_ms", "retry_after"}


class ConnectionDropped(Exception):
    """Raised inside the app to cut the connection (a fault, not a bug)."""


@dataclass
class Faults:
    rates: dict[str, float] = field(default_factory=dict)
    token_limit_rate: float = 0.0
    latency_ms: float = 0.0
    retry_after: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Faults:
        """Read `key:value,...`; a ValueError names what is wrong."""
        faults = cls(seed=seed)
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, raw = item.partition(":")
            key = ALIASES.get(key.strip(), key.strip())
            if not sep or key not in KNOWN:
                raise ValueError(f"Unknown fault {item!r}; use {', '.join(sorted(KNOWN))} as key:value.")
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"Fault {key} needs a number, not {raw!r}.") from None
            if key in RATE_KEYS or key == "token_limit_exceeded":
                if not 0 <= value <= 1:
                    raise ValueError(f"Fault {key} is a share of requests between 0 and 1, not {value}.")
            elif value < 0:
                raise ValueError(f"Fault {key} cannot be negative.")
            if key in RATE_KEYS:
                faults.rates[key] = value
            elif key == "token_limit_exceeded":
                faults.token_limit_rate = value
            elif key == "latency_ms":
                faults.latency_ms = value
            else:
                faults.retry_after = value
        return faults

    def _draw(self) -> float:
        with self._lock:
            return self._random.random()

    def pick(self) -> str | None:
        """The fault for this request (`429`, `500`, `503`, `drop`), or None."""
        if not self.rates:
            return None
        draw = self._draw()
        for key in RATE_KEYS:
            rate = self.rates.get(key, 0.0)
            if draw < rate:
                return key
            draw -= rate
        return None

    def token_limit_exceeded(self) -> bool:
        return self.token_limit_rate > 0 and self._draw() < self.token_limit_rate
