"""What the emulator keeps: each request as it arrived, the faults to inject, node counts, jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["Fault", "Job", "Nodes", "Recorded", "go_time"]


@dataclass
class Recorded:
    """One request the emulator received, as it arrived."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    request_id: str = ""
    status: int = 0  # what the emulator answered (0: no answer, the connection was dropped)
    region: str = ""  # the region the endpoint named ({region} in it), "" when it named none
    raw_path: str = ""  # the path as sent, the region first when the endpoint named one (what was signed)
    at: float = 0.0  # when it arrived (time.time())
    sim: float = 0.0  # when it arrived by the emulator's clock (CCE's time)
    syncing: tuple[str, ...] = ()  # a pool read: the pools the answer showed synchronizing
    job_id: str = ""  # a sync: the job it started

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def is_iam(self) -> bool:
        return self.path.startswith("/v3/")

    @property
    def is_smn(self) -> bool:
        return "/notifications/" in self.path

    @property
    def is_ces(self) -> bool:
        return self.path.startswith("/V1.0/")

    @property
    def is_fgs(self) -> bool:
        return "/fgs/" in self.path

    @property
    def is_cce(self) -> bool:
        return self.path.startswith("/api/")


@dataclass
class Fault:
    """What to do instead of (or after) answering normally, for the next `times` matching requests."""

    times: int = 1
    method: str | None = None
    path_contains: str | None = None
    path_endswith: str | None = None
    raw: bytes | None = None  # answer `status` (200 by default) with exactly these bytes
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    malformed: bool = False  # answer 200 with a body that is not JSON
    redirect_to: str | None = None
    process_first: bool = False  # act on the request (accept the sync) before failing
    drip: float = 0.0  # answer normally, but send the body one byte every `drip` seconds
    echo_token: bool = False  # the error message repeats the request's X-Auth-Token (a leaky server)
    bad_length: bool = False  # answer normally, but with a Content-Length that cannot be read
    drip_head: float = 0.0  # answer normally, but send the status line and headers one byte every `drip_head` s

    def matches(self, method: str, path: str) -> bool:
        return (
            (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.path_endswith is None or path.endswith(self.path_endswith))
        )


@dataclass
class Nodes:
    """A pool's node counts as NodePoolStatus reports them: `current` nodes, `synced` of them on the template."""

    current: int
    synced: int
    drifted_at: float = 0.0


@dataclass
class Job:
    id: str
    project_id: str
    cluster_id: str
    nodepool_id: str
    created: float
    seconds: float
    outcome: str
    resource_id: str = ""  # the resource the job acts on (default: the pool)
    reason: str = "Node reset failed"

    def phase(self, now: float) -> str:
        elapsed = now - self.created
        if elapsed >= self.seconds:
            return self.outcome
        return "Initializing" if elapsed < self.seconds / 4 else "Running"

    def updated(self, now: float) -> float:
        return min(now, self.created + self.seconds)


def go_time(epoch: float) -> str:
    """A time as CCE's jobs give it: Go's default format with nanoseconds (`time.Time.String()`; the SDK's Job
    model does not say which format), 9 fractional digits as in the CCE API reference's examples."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    nanoseconds = f"{moment.microsecond:06d}{int(epoch * 1e9) % 1000:03d}"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + nanoseconds + " +0000 UTC"
