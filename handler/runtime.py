"""The FunctionGraph context as the function uses it, tolerant of partial contexts and `None`, and deadlines."""

import math
import time
from typing import NamedTuple

from .strictjson import label

__all__ = ["Deadline", "RuntimeContext"]


MAX_REMAINING_MS = 900_000.0  # FunctionGraph's longest timeout: a context claiming more is not believed


class RuntimeContext:
    """Reads the context's methods safely: a missing method, any error or an answer of the wrong kind reads as
    "no value" for that method."""

    __slots__ = ("_context",)

    def __init__(self, context: object) -> None:
        self._context = context

    def _call(self, name: str, *args: str) -> object:
        try:
            method = getattr(self._context, name, None)
            return method(*args) if callable(method) else None
        except Exception:
            return None

    def text(self, name: str) -> str:
        value = self._call(name)
        return value.strip() if isinstance(value, str) else ""

    @property
    def request_id(self) -> str:
        return label(self.text("getRequestID"))

    @property
    def project_id(self) -> str:
        return self.text("getProjectID")

    def agency_token(self) -> str:
        """The agency's IAM token: `getToken()` as documented, `getAuthToken()` as the open-source runtime names it.

        https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py (getAuthToken)
        """
        return self.text("getToken") or self.text("getAuthToken")

    def user_data(self, name: str) -> str | None:
        """A variable of the function's configuration, encrypted ones included (`getUserData(key)`); None if absent.

        https://github.com/openyuanrong/runtime/blob/main/api/python/yr/functionsdk/context.py (getUserData)
        """
        value = self._call("getUserData", name)
        return value if isinstance(value, str) else None

    def remaining_ms(self) -> float | None:
        """The invocation's remaining time, within [0, MAX_REMAINING_MS]; None when the context cannot say."""
        value = self._call("getRemainingTimeInMilliSeconds")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            remaining = float(value)
        except OverflowError:  # an int beyond any float, such as 10**400: not an answer
            return None
        if math.isnan(remaining):
            return None
        return min(max(remaining, 0.0), MAX_REMAINING_MS)

    def deadline(self, reserve_ms: float) -> "Deadline":
        """The moment the function must stop waiting, leaving `reserve_ms` to answer; no context, no deadline."""
        remaining = self.remaining_ms()
        if remaining is None:
            return Deadline(None)
        return Deadline(time.monotonic() + max(0.0, remaining - reserve_ms) / 1000.0)


class Deadline(NamedTuple):
    """A monotonic point in time (or None for no limit) that every wait and timeout must fit in."""

    at: float | None

    def remaining(self) -> float:
        """Seconds left; infinity when there is no deadline."""
        return float("inf") if self.at is None else max(0.0, self.at - time.monotonic())

    def limit(self) -> float | None:
        """Seconds a wait may last: None when there is no deadline (waits of threading's kind take None)."""
        return None if self.at is None else self.remaining()
