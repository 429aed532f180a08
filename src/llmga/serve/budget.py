"""A memory budget: work that needs a lot of memory at once (decoding uploaded images) takes its share
first, and waits while others hold the rest, so many requests at once cannot add up past a ceiling."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .http_errors import UnavailableError


class MemoryBudget:
    """``limit`` bytes shared by whoever holds a part; a request waits up to ``wait`` seconds for its part."""

    def __init__(self, limit: int, wait: float = 30.0) -> None:
        self.limit, self.wait = limit, wait
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes (at most the whole budget) for the block; UnavailableError if it does not come."""
        amount = max(0, min(amount, self.limit))
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self.used + amount > self.limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise UnavailableError("the studio is busy decoding other images; try again shortly",
                                           retry_after=2)
                self._cond.wait(left)
            self.used += amount
        try:
            yield
        finally:
            with self._cond:
                self.used -= amount
                self._cond.notify_all()
