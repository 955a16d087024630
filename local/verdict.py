"""`python -m local validate`: the handler's own judgement of an event, without sending anything.

It is the handler's first steps, not a copy of them: a `Function` built from the settings, its `items`, `unwrap`
and `interpret` at the current time, then the intent's own description (each kind describes itself). So
`validate` and `invoke --dry-run` agree by construction on whatever is decided before the cloud is read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from handler import triggers
from handler.errors import SyncError
from handler.function import Function
from handler.kinds.base import kind_of
from handler.rendering import Description, problems
from handler.settings import Settings

__all__ = ["Verdict", "verdict"]

Verdict = Description  # valid or not, what it is, its problems (with the handler's codes), the defaults applied


def verdict(event: Any, environment: Mapping[str, str], now: float | None = None) -> list[Verdict]:
    """One verdict per request the event holds (one, or one per event of an EventGrid batch)."""
    try:
        settings = Settings.from_environ(environment)
        items = Function.items(event, triggers.recognize(event))
    except SyncError as error:
        return [Verdict(False, "event", problems(error))]
    function = Function(settings, clock=time.time if now is None else (lambda: now))
    verdicts = []
    for item, trigger in items:
        try:
            unwrapped = function.unwrap(item, trigger)
        except SyncError as error:
            verdicts.append(Verdict(False, "event", problems(error)))
            continue
        intent, judged = function.interpret(unwrapped)
        verdicts.append(kind_of(intent).describe(unwrapped, judged))
    function.close()
    return verdicts
