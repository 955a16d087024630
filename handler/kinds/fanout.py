"""Kind: a pass over several scopes (SYNC_SCOPES): one asynchronous invocation of this function per scope.

FunctionGraph's own asynchronous invocation is the queue (`POST /v2/{project_id}/fgs/functions/{function_urn}/
invocations-async`, huaweicloudsdkfunctiongraph AsyncInvokeFunction), so no state store is needed: each worker
reads CCE's state for its scope, which stays the only state. The coordinator reads no node pool itself.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from ..cloud import Cloud
from ..endpoints import Scope, scope_region
from ..errors import ConfigurationError, PayloadTooLarge, SyncError, TargetNotAllowed
from ..judge import Judge
from ..model import TIMER_PASS, Unwrapped
from ..passwords import salt_body
from ..rendering import Answer, Description, Status

if TYPE_CHECKING:
    from ..metrics import Publication

__all__ = ["MAX_ASYNC_BYTES", "Coordinate", "DispatchReport", "dispatch"]

# FunctionGraph's limit on an asynchronous invocation's body (API reference, AsyncInvokeFunction).
MAX_ASYNC_BYTES = 256 * 1024
MAX_IN_FLIGHT = 8


class DispatchReport(NamedTuple):
    """A coordinator's work: each scope's worker invocation (FunctionGraph's request id) or why it did not go."""

    pass_id: str
    scopes: tuple[tuple[Scope, str | SyncError], ...]
    metrics: "Publication | None" = None  # how reporting to Cloud Eye went (None: not reported)


def dispatch(intent: "Coordinate", cloud: Cloud, urn: str) -> DispatchReport:
    """Invoke one worker per scope, a few at a time; a scope that cannot be dispatched is reported, the others go."""
    if not urn:
        raise ConfigurationError(
            "the function's own URN is unknown (RUNTIME_FUNC_NAME, RUNTIME_PACKAGE, HUAWEICLOUD_SDK_REGION and the "
            "project make it): set FUNCTION_URN"
        )

    document = salt_body(intent.document)  # no plain node password travels in a worker's payload

    def one(scope: Scope) -> tuple[Scope, str | SyncError]:
        body = {**document, "scope": {"region": scope.region, "project_id": scope.project_id}}
        data = json.dumps(body, separators=(",", ":")).encode()
        if len(data) > MAX_ASYNC_BYTES:
            return scope, PayloadTooLarge(f"the worker's document is larger than {MAX_ASYNC_BYTES} bytes")
        try:
            return scope, cloud.invoke(urn, data)
        except SyncError as error:
            return scope, error

    scopes = list(intent.scopes)
    if len(scopes) <= 1:
        sent = [one(scope) for scope in scopes]
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_IN_FLIGHT, len(scopes))) as pool:
            sent = list(pool.map(one, scopes))
    return DispatchReport(intent.pass_id, (*sent, *intent.refused))


def render_dispatch(report: DispatchReport) -> Answer:
    """Each scope's worker: FunctionGraph's request id, or why it was not dispatched (207 when any was not)."""
    scopes: list[dict[str, Any]] = []
    for scope, outcome in report.scopes:
        entry: dict[str, Any] = {"region": scope.region, "project_id": scope.project_id}
        if isinstance(outcome, SyncError):
            entry.update(error=outcome.message, error_code=outcome.code)
        else:
            entry["request_id"] = outcome
        scopes.append(entry)
    failed = sum("error" in entry for entry in scopes)
    summary = {"message": "fan-out", "pass_id": report.pass_id, "scopes": len(scopes), "not_dispatched": failed}
    body: dict[str, Any] = {"pass_id": report.pass_id, "scopes": scopes}
    if report.metrics is not None:
        body["metrics"] = report.metrics.answer()
    return Answer(Status.DISPATCHED, body, 207 if failed else 200, (summary,))


class Coordinate(NamedTuple):
    """One worker per scope, each running the pass for its scope; the coordinator reads no node pool itself."""

    document: dict[str, Any]  # the reconcile document every worker gets, with its scope and the pass ID
    pass_id: str
    scopes: tuple[Scope, ...]
    refused: tuple[tuple[Scope, SyncError], ...] = ()  # scopes the allowlist does not reach: never dispatched
    accessible: bool = False  # SYNC_SCOPES=accessible: the scopes are listed when the pass is coordinated
    project: str = ""  # with accessible: the document's project, the only one fanned out to

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        intent = self._listed(cloud, judge) if self.accessible else self
        report = dispatch(intent, cloud, judge.settings.own_urn(judge.defaults.project_id))
        settings = judge.settings
        if settings.ces_namespace and self.pass_id.startswith(TIMER_PASS):  # the scheduled pass reports
            from ..metrics import dispatch_points, publish

            failed = sum(isinstance(outcome, SyncError) for _, outcome in report.scopes)
            points = dispatch_points(settings.region, cloud.own, len(report.scopes) - failed, failed)
            report = report._replace(metrics=publish(cloud, settings.ces_namespace, points))
        return render_dispatch(report)

    def _listed(self, cloud: Cloud, judge: Judge) -> "Coordinate":
        """The scopes of SYNC_SCOPES=accessible: every enabled project the function's identity reaches that is
        named after a region (or is a region's subproject), in SYNC_SCOPE_REGIONS when set; a project the
        allowlist does not reach is reported, not dispatched. Raises when IAM cannot list them."""
        regions = judge.settings.scope_regions
        scopes = [
            Scope(scope_region(name), project_id)
            for project_id, name, enabled in cloud.projects()
            if enabled and scope_region(name) and (not regions or scope_region(name) in regions)
        ]
        scopes = [scope for scope in scopes if not self.project or scope.project_id == self.project]
        if not scopes:
            raise TargetNotAllowed(f"no project the function can reach is a scope of {self.project or 'any region'}")
        refused = [(scope, judge.refusal(scope.project_id)) for scope in scopes]
        dispatched = tuple(scope for scope, refusal in refused if refusal is None)
        return self._replace(scopes=dispatched, refused=tuple((s, r) for s, r in refused if r is not None))

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        refused = f", {len(self.refused)} scope(s) outside SYNC_ALLOWED_TARGETS" if self.refused else ""
        return Description(True, f"fan-out pass: {len(self.scopes)} worker(s), one per scope{refused}")
