"""The coordinator of a fanned-out pass: one asynchronous invocation of this function per scope.

FunctionGraph's own asynchronous invocation is the queue (`POST /v2/{project_id}/fgs/functions/{function_urn}/
invocations-async`, huaweicloudsdkfunctiongraph AsyncInvokeFunction), so no state store is needed: each worker
reads CCE's state for its scope, which stays the only state. The coordinator reads no node pool itself.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from .cloud import Cloud
from .errors import ConfigurationError, PayloadTooLarge, SyncError
from .intents import Coordinate
from .reports import DispatchReport
from .settings import Scope

__all__ = ["MAX_ASYNC_BYTES", "dispatch"]

MAX_ASYNC_BYTES = 256 * 1024  # FunctionGraph's limit on an asynchronous invocation's body (platform-facts.md)
MAX_IN_FLIGHT = 8


def dispatch(intent: Coordinate, cloud: Cloud, urn: str) -> DispatchReport:
    """Invoke one worker per scope, a few at a time; a scope that cannot be dispatched is reported, the others go."""
    if not urn:
        raise ConfigurationError(
            "the function's own URN is unknown (RUNTIME_FUNC_NAME, RUNTIME_PACKAGE, HUAWEICLOUD_SDK_REGION and the "
            "project make it): set FUNCTION_URN"
        )

    def one(scope: Scope) -> tuple[Scope, str | SyncError]:
        body = {**intent.document, "scope": {"region": scope.region, "project_id": scope.project_id}}
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
