"""EventGrid delivers at least once, and one change may come by two paths: a result is kept for a window."""

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import UpstreamTimeout
from .runtime import Deadline

__all__ = ["EventKey", "RecentEvents"]

T = TypeVar("T")
EventKey = tuple[str, str, str]  # tagged by kind (model.Unwrapped.event_id): ids are unique only within their source


class RecentEvents(Generic[T]):
    """EventGrid delivers at least once: the result of an event is kept for a window and given again.

    Results that `keep` rejects (transient failures) are not kept, so a redelivery really retries.
    Concurrent deliveries of one event run once; the others wait for its result, each no longer than its own
    deadline.
    """

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window, self._clock = window_seconds, clock
        self._lock = threading.Lock()
        self._done: dict[EventKey, tuple[float, T]] = {}
        self._running: dict[EventKey, threading.Event] = {}

    def once(
        self,
        event_id: EventKey,
        run: Callable[[], T],
        deadline: Deadline,
        keep: Callable[[T], bool] = lambda _: True,
    ) -> T:
        while True:
            with self._lock:
                # Results are stored in the order they finish, so the expired ones are at the front.
                now = self._clock()
                while self._done and now - next(iter(self._done.values()))[0] > self._window:
                    del self._done[next(iter(self._done))]
                if event_id in self._done:
                    return self._done[event_id][1]
                running = self._running.get(event_id)
                if running is None:
                    running = self._running[event_id] = threading.Event()
                    break
            if not running.wait(deadline.limit()):
                raise UpstreamTimeout("an earlier delivery of this event was still running when time ran out")
        try:
            result = run()
            if self._window > 0 and keep(result):
                with self._lock:
                    self._done[event_id] = (self._clock(), result)
            return result
        finally:
            with self._lock:
                del self._running[event_id]
            running.set()
