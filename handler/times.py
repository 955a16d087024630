"""Times as CCE gives them and as answers say them; dependency-free, so every supported Python runs it alike."""

import re
import time
from datetime import datetime, timezone
from typing import Any

__all__ = ["EARLIEST", "MAX_AHEAD_SECONDS", "parse_time", "utc_text"]

# RFC 3339 (`2026-11-30T08:00:00.123456789Z`, as the CCE API reference's job example writes it), or Go's default
# (`2026-11-30 08:00:00.123456 +0000 UTC`): the SDK's Job model does not say which
# (huaweicloudsdkcce v3/model/job_metadata.py: strings). 0 to 9
# fractional digits, parsed here rather than by `fromisoformat`, which on Python 3.10 takes only 3 or 6.
_TIME = (  # compiled on first use (re's cache): the valid path of a single sync never reads a job's time
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2})(?: [A-Z]{2,5})?| ([+-])(\d{2})(\d{2})(?: [A-Z]{2,5})?)"
)
EARLIEST = 946684800.0  # 2000-01-01T00:00:00Z: no CCE job is older
MAX_AHEAD_SECONDS = 900.0  # a time further ahead than a clock may drift is not a time of this job


def parse_time(value: Any, now: float | None = None) -> float | None:
    """A CCE timestamp as epoch seconds; None for anything else, a time before 2000, or one more than 15
    minutes after `now` (default: the clock): such a time is unreadable, never an error."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    match = re.fullmatch(_TIME, value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, oh, om, gsign, gh, gm = match.groups()
    sign, oh, om = (sign, oh, om) if sign else (gsign, gh, gm)
    offset = 0 if zulu else (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone.utc)
    except ValueError:
        return None
    epoch = moment.timestamp() - offset + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
    latest = (time.time() if now is None else now) + MAX_AHEAD_SECONDS
    return epoch if EARLIEST <= epoch <= latest else None


def utc_text(epoch: float) -> str:
    """A moment as answers give it: ISO 8601 in UTC to the second, `Z`-suffixed."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
