"""Maintenance windows (SYNC_WINDOWS): when a sync may start, for every trigger.

Comma-separated entries `<days> <HH:MM>-<HH:MM><offset>`: days `Mon`..`Sun`, a range `Mon-Fri` or `*`, an offset
like `+08:00`, e.g. `Mon-Fri 01:00-05:00+08:00, Sat-Sun 00:00-06:00+08:00`. A window may cross midnight; its
days name the day it starts. Windows are judged by the current time, never an event's.
"""

import re
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

__all__ = ["Window", "Windows", "parse_windows"]

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_ENTRY = (  # compiled by re's cache on first use: unset, SYNC_WINDOWS costs nothing
    r"(?P<days>\*|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:-(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun))?)\s+"
    r"(?P<start>[0-2][0-9]:[0-5][0-9])-(?P<end>[0-2][0-9]:[0-5][0-9])(?P<offset>[+-][0-2][0-9]:[0-5][0-9])"
)


class Window(NamedTuple):
    """One window: the weekdays it starts on (0 = Monday), its start and length in minutes, its UTC offset."""

    days: frozenset[int]
    start_minute: int
    minutes: int
    offset: timedelta


class Windows(NamedTuple):
    """The windows; none means always open."""

    windows: tuple[Window, ...] = ()

    def open_at(self, now: datetime) -> bool:
        return not self.windows or any(self._inside(window, now) for window in self.windows)

    @staticmethod
    def _inside(window: Window, now: datetime) -> bool:
        local = now.astimezone(timezone(window.offset))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for days_back in (0, 1):  # today's window, or yesterday's running past midnight
            start = midnight - timedelta(days=days_back) + timedelta(minutes=window.start_minute)
            if start.weekday() in window.days and start <= local < start + timedelta(minutes=window.minutes):
                return True
        return False

    def closed_until(self, now: datetime) -> datetime | None:
        """None while a window is open (or there are none); otherwise when the next one opens."""
        return None if self.open_at(now) else self.next_start(now)

    def next_start(self, now: datetime) -> datetime | None:
        """When the next window opens (UTC), within the coming week; None without windows."""
        starts = []
        for window in self.windows:
            local = now.astimezone(timezone(window.offset))
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            for days_ahead in range(8):
                start = midnight + timedelta(days=days_ahead, minutes=window.start_minute)
                if start.weekday() in window.days and start > local:
                    starts.append(start.astimezone(timezone.utc))
                    break
        return min(starts) if starts else None

    def as_configured(self, instant: datetime) -> str:
        """An opening in the offset of the window that opens then, as configured (`Wed 01:00+08:00`)."""
        for window in self.windows:
            local = instant.astimezone(timezone(window.offset))
            if local.hour * 60 + local.minute == window.start_minute and local.weekday() in window.days:
                return f"{DAYS[local.weekday()]} {local.isoformat(timespec='minutes')[11:]}"  # 01:00+08:00
        return ""


FORM = '"<days> HH:MM-HH:MM±HH:MM", e.g. "Mon-Fri 01:00-05:00+08:00"'


def _minutes(text: str, latest: int) -> int:
    """HH:MM as minutes, at most `latest` (24:00 ends a day; an offset stays below 24 hours)."""
    hours, minutes = (int(part) for part in text.split(":"))
    if hours * 60 + minutes > latest:
        raise ValueError(f"{text} is out of range (hour {hours}); expected {FORM}")
    return hours * 60 + minutes


def _days(text: str) -> frozenset[int]:
    if text == "*":
        return frozenset(range(7))
    first, _, last = text.partition("-")
    start, end = DAYS.index(first), DAYS.index(last or first)
    return frozenset((start + i) % 7 for i in range((end - start) % 7 + 1))


def parse_windows(value: str) -> Windows:
    """The windows of SYNC_WINDOWS; ValueError says which entry is malformed (never echoing more of it)."""
    windows = []
    for entry in (e.strip() for e in value.split(",") if e.strip()):
        match = re.fullmatch(_ENTRY, entry)
        if match is None:
            raise ValueError(f"entry {entry[:40]!r} is not of the form {FORM}")
        start, end = _minutes(match["start"], 24 * 60), _minutes(match["end"], 24 * 60)
        sign = -1 if match["offset"][0] == "-" else 1
        # datetime.timezone takes offsets strictly inside ±24 hours: a larger one would fail every invocation.
        offset = sign * timedelta(minutes=_minutes(match["offset"][1:], 24 * 60 - 1))
        length = (end - start) % (24 * 60) or 24 * 60  # 01:00-01:00 is the whole day
        windows.append(Window(_days(match["days"]), start, length, offset))
    return Windows(tuple(windows))
