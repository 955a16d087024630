"""How many CCE requests one pass keeps in flight: at most its `concurrency`, halved after each throttling answer.

A throttling answer (HTTP 429 CCE.02429001 or APIG.0308, retry.classify) is noted by the one request path
(api.ApiClient) wherever it comes from; the pass's Pacer, current in the thread doing the pass's work, halves
its limit for the rest of the pass (never below one), so a pass backs off as CCE asks instead of retrying at the
same pace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["Pacer", "note_throttled", "wait"]

T = TypeVar("T")
R = TypeVar("R")
_current: ContextVar[Pacer | None] = ContextVar("pacer", default=None)


class Pacer:
    """A gate: at most `limit` of a pass's calls at once; halved after a throttling answer."""

    def __init__(self, limit: int) -> None:
        self._limit, self._in_flight, self.peak, self.throttled = max(1, limit), 0, 0, 0
        self._changed = threading.Condition()
        self.stopped = ""  # why the pass starts nothing more (CCE asked for a wait longer than it can afford)

    def stop(self, reason: str) -> None:
        self.stopped = self.stopped or reason

    @property
    def limit(self) -> int:
        return self._limit

    def throttle(self) -> None:
        with self._changed:
            self._limit = max(1, self._limit // 2)
            self.throttled += 1

    def _take(self) -> None:
        with self._changed:
            while self._in_flight >= self._limit:
                self._changed.wait()
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)

    def _give(self) -> None:
        with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self._take()
        token = _current.set(self)
        try:
            yield
        finally:
            _current.reset(token)
            self._give()

    def pause(self, sleep: Callable[[float], None], seconds: float) -> None:
        """Wait out a retry without holding a slot: after a throttling answer, at most the halved limit is in
        flight while the others wait."""
        self._give()
        try:
            sleep(seconds)
        finally:
            self._take()

    def map(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`work` over the items, at most `limit` at once, results in order."""

        def paced(item: T) -> R:
            with self.slot():
                return work(item)

        if len(items) <= 1:
            return [paced(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor  # only a pass over several clusters needs threads

        with ThreadPoolExecutor(max_workers=min(self._limit, len(items))) as pool:
            return list(pool.map(paced, items))


def wait(sleep: Callable[[float], None], seconds: float) -> None:
    """A retry's wait: the current pass's slot given up meanwhile, when there is a pass."""
    pacer = _current.get()
    if pacer is None:
        sleep(seconds)
    else:
        pacer.pause(sleep, seconds)


def note_throttled() -> None:
    """CCE (or its gateway) asked for fewer requests: the current pass's Pacer, if any, halves its limit."""
    pacer = _current.get()
    if pacer is not None:
        pacer.throttle()
