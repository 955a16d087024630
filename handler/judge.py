"""What a request is judged against: the settings, the defaults they give, and the time (windows)."""

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .errors import OutsideWindow, SyncError
from .gate import window_holds
from .model import Target
from .settings import Settings
from .validation import Defaults, ValidSync, prepare

__all__ = ["Judge", "Judged", "judge", "utc"]


class Judged(Exception):
    """A refusal of a sync whose target is known (for the log line)."""

    def __init__(self, error: SyncError, target: Target) -> None:
        super().__init__(error.message)
        self.error, self.target = error, target


def utc(epoch: float) -> str:
    """An instant as answers show it (UTC, seconds)."""
    from .times import utc_text  # only when a window is closed or a pass reports a time

    return utc_text(epoch)


class Judge(NamedTuple):
    """The settings, their defaults (the context's project), the time a request is judged at and the clock
    (the function's) a pass reads time from as it goes."""

    settings: Settings
    defaults: Defaults
    now: float
    clock: Callable[[], float] = time.time

    def refusal(self, project_id: str, cluster_id: str = "", nodepool_id: str = "") -> SyncError | None:
        return self.settings.allowed_targets.refusal(self.defaults.project_id, project_id, cluster_id, nodepool_id)

    def closed_until(self) -> float | None:
        """None while a maintenance window is open (or none is set); otherwise when the next one opens."""
        windows = self.settings.windows
        if windows is None:
            return None
        closed = windows.closed_until(datetime.fromtimestamp(self.now, timezone.utc))
        return closed.timestamp() if closed is not None else None

    def outside_window(self, closed_until: float) -> OutsideWindow:
        """The refusal of a start while every window is closed: the next opening in UTC and as configured."""
        opening = datetime.fromtimestamp(closed_until, timezone.utc)
        windows = self.settings.windows
        return OutsideWindow(utc(closed_until), windows.as_configured(opening) if windows is not None else "")

    def sync(self, document: Mapping[str, Any], overrides: Mapping[str, str] | None = None) -> ValidSync:
        """A single sync as it may go: valid, allowed and inside a window (unless forced or ignore_windows);
        raises otherwise. The other guards, which read the fleet, are the gate's when it is performed."""
        sync = prepare(document, overrides or {}, self.defaults)
        refusal = self.refusal(*sync.target)
        if refusal is not None:
            raise Judged(refusal, sync.target)
        closed_until = self.closed_until()
        if closed_until is not None and window_holds(closed_until, sync.lifts):
            raise Judged(self.outside_window(closed_until), sync.target)
        return sync

    def target(self, document: Mapping[str, Any]) -> ValidSync | SyncError:
        """One target of a fleet: its sync, or why it cannot go."""
        try:
            return self.sync(document)
        except Judged as judged:
            return judged.error
        except SyncError as error:
            return error


def judge(settings: Settings, context_project: str, now: float, clock: Callable[[], float] = time.time) -> Judge:
    """What requests are judged against now: the settings, their defaults (the context's project), the time."""
    return Judge(settings, settings.defaults(context_project), now, clock)
