"""A memory budget: work that needs a lot of memory at once (reading a large body, decoding an image) takes
its share first, and waits while others hold the rest, so many requests at once cannot add up past a ceiling.

Threads wait with :meth:`MemoryBudget.hold`; the event loop (middleware) with
:meth:`MemoryBudget.hold_async`. A share that does not come within ``wait``
seconds is :class:`~llmga.serve.http_errors.UnavailableError` (503, Retry-After).
One request may hold several shares at once (its body, then an image it
decodes): what it holds already is counted (a context variable), so its later
shares never wait for its own earlier ones.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from .http_errors import UnavailableError


class MemoryBudget:
    """``limit`` bytes shared by whoever holds a part (a part is at most the whole budget)."""

    def __init__(self, limit: int, wait: float = 30.0, what: str = "handling other large requests") -> None:
        self.limit, self.wait, self.what = limit, wait, what
        self.used = 0
        self._cond = threading.Condition()
        self._mine = contextvars.ContextVar(f"budget-{id(self)}", default=0)  # what this request holds

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes for the block, waiting in this thread for them."""
        amount = self._share(amount)
        deadline = time.monotonic() + self.wait
        with self._cond:
            while not self._take(amount):
                if not self._cond.wait(deadline - time.monotonic()):
                    raise self._busy()
        token = self._mine.set(self._mine.get() + amount)
        try:
            yield
        finally:
            self._give_back(token, amount)

    @asynccontextmanager
    async def hold_async(self, amount: int) -> AsyncIterator[None]:
        """Hold ``amount`` bytes for the block, waiting without holding the event loop."""
        amount = self._share(amount)
        deadline = time.monotonic() + self.wait
        while True:
            with self._cond:
                if self._take(amount):
                    break
            if time.monotonic() > deadline:
                raise self._busy()
            await asyncio.sleep(0.05)
        token = self._mine.set(self._mine.get() + amount)
        try:
            yield
        finally:
            self._give_back(token, amount)

    def _share(self, amount: int) -> int:
        """The part of ``amount`` to take: at most what the budget has beyond this request's own shares."""
        return max(0, min(amount, self.limit - self._mine.get()))

    def _take(self, amount: int) -> bool:
        if self.used + amount > self.limit:
            return False
        self.used += amount
        return True

    def _give_back(self, token: contextvars.Token, amount: int) -> None:
        self._mine.reset(token)
        with self._cond:
            self.used -= amount
            self._cond.notify_all()

    def _busy(self) -> UnavailableError:
        return UnavailableError(f"the studio is busy ({self.what}); try again shortly", retry_after=2)
