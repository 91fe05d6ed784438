"""Time for the engine: a clock it is given (the wall clock and the event loop in the sidecar, a hand-moved
clock in tests) and the timers that wake an instance when an event in its inbox becomes visible (a durable
timer firing, a scheduled start). The durable part of a timer is its inbox event in the store; a ``Timers``
entry is only the wake-up call, armed again from the store after a restart."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

from .model import Key

# Wake-ups further away than this are armed in steps (asyncio's call_later wants sane delays).
MAX_ARM = 3600.0


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` once, ``delay`` seconds from now, on the engine's loop."""


class LoopClock:
    """The wall clock, with wake-ups on the running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        return time.time()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self._loop.call_later(delay, fn)


class ManualClock:
    """A clock that moves only when told to (``advance``), calling what fell due on the way, in order."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self._now = now
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._due, (self._now + max(delay, 0.0), next(self._order), fn))

    def advance(self, seconds: float) -> None:
        until = self._now + seconds
        while self._due and self._due[0][0] <= until:
            when, _, fn = heapq.heappop(self._due)
            self._now = max(self._now, when)
            fn()
        self._now = until

    @property
    def pending(self) -> int:
        return len(self._due)


class Timers:
    """One wake-up per instance at the earliest time it was asked for; ``wake(key)`` is called then. A later
    request for an instance already armed earlier is dropped: the earlier wake-up re-arms what remains."""

    def __init__(self, clock: Clock, wake: Callable[[Key], None]) -> None:
        self._clock = clock
        self._wake = wake
        self._armed: dict[Key, float] = {}

    def arm(self, key: Key, at: float) -> None:
        armed = self._armed.get(key)
        if armed is not None and armed <= at:
            return
        delay = min(at - self._clock.now(), MAX_ARM)
        self._armed[key] = self._clock.now() + delay
        self._clock.call_later(max(delay, 0.0) + 0.001, lambda: self._fire(key))

    def _fire(self, key: Key) -> None:
        self._armed.pop(key, None)
        self._wake(key)
