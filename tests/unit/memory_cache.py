"""An in-memory stand-in for Redis in unit tests of the query cache: entries with a TTL on a clock
the test moves, and counters that `incr_many` adds to, as Redis keeps them."""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryBackend:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.entries: dict[str, tuple[float, str]] = {}
        self.counters: dict[str, int] = {}
        self._clock = clock

    def get_many(self, keys: list[str]) -> list[str | None]:
        now = self._clock()
        values: list[str | None] = []
        for key in keys:
            if key in self.counters:
                values.append(str(self.counters[key]))
                continue
            entry = self.entries.get(key)
            if entry is None or entry[0] <= now:
                self.entries.pop(key, None)
                values.append(None)
            else:
                values.append(entry[1])
        return values

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self.entries[key] = (self._clock() + ttl_seconds, value)

    def incr_many(self, keys: list[str]) -> None:
        for key in keys:
            self.counters[key] = self.counters.get(key, 0) + 1
