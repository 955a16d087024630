"""What each emulated service answers, route by route: IAM's token, CCE's node pools, clusters, jobs and sync,
SMN's publish, FunctionGraph's asynchronous invocation, Cloud Eye's CreateMetricData (ces.py), and the
emulator's own control routes. Node pool reads
answer as the SDK documents (huaweicloudsdkcce ShowNodePoolRequest, ListNodePoolsRequest): without
`advanceStatus=true` the status reflects only the default scaling group, and the list hides `DefaultPool` unless
asked `showDefaultNodePool=true`."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from .ces import metric_data
from .records import Recorded, go_time

if TYPE_CHECKING:
    from .core import Emulator

__all__ = ["route"]

_POOL = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools/([^/]+)$")
_POOLS = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools$")
_CLUSTERS = re.compile(r"^/api/v3/projects/([^/]+)/clusters$")
_PUBLISH = re.compile(r"^/v2/([^/]+)/notifications/topics/([^/]+)/publish$")
_SYNC = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools/([^/]+)/operation/upgrade$")
_JOB = re.compile(r"^/api/v3/projects/([^/]+)/jobs/([^/]+)$")
_INVOKE_ASYNC = re.compile(r"^/v2/([^/]+)/fgs/functions/([^/]+)/invocations-async$")
_METRIC_DATA = re.compile(r"^/V1.0/([^/]+)/metric-data$")
DEFAULT_POOL = "DefaultPool"


def _flag(query: str, name: str) -> bool:
    """A boolean query parameter as CCE reads it: true only when given as `true`."""
    return parse_qs(query).get(name) == ["true"]


def route(emulator: Emulator, request: Recorded, request_id: str) -> tuple[int, Any, dict[str, str]]:
    """What the service the request is for answers: status, body, headers."""
    headers = {"X-Request-Id": request_id}
    path, method = request.path, request.method
    if path.startswith("/_emulator/"):
        return (*_control(emulator, request), headers)
    if method == "GET" and path == "/v3/auth/projects":
        problem = emulator.authenticate(request, None)
        if problem is not None:
            return 401, {"error": {"code": 401, "message": problem, "title": "Unauthorized"}}, headers
        return 200, emulator.project_list(), headers
    if method == "POST" and path == "/v3/auth/tokens":
        try:
            parsed = json.loads(request.body)
        except ValueError:
            parsed = None
        status, extra, body = emulator.issue_token(parsed)
        return status, body, {**headers, **extra}
    for pattern, verb, answer in _ROUTES:
        match = pattern.match(path)
        if match and method == verb:
            refused = _refused(emulator, request, match.group(1))
            return (*(refused or answer(emulator, request, match)), headers)
    return 404, {"errorCode": "CCE.01404001", "errorMessage": "Not found"}, headers


def _pool(emulator: Emulator, request: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    project, cluster, pool = match.groups()
    advance = _flag(request.query, "advanceStatus")
    return _unknown(emulator, project, cluster, pool) or (
        200,
        _shown(request, [emulator.pool_view(project, cluster, pool, advance)])[0],
    )


def _shown(request: Recorded, pools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pools as answered, the ones shown synchronizing noted on the request (a soak's history reads them)."""
    request.syncing = tuple(
        pool["metadata"]["uid"]
        for pool in pools
        if any(c.get("status") == "True" for c in pool["status"].get("conditions", ()))
    )
    return pools


def _pools(emulator: Emulator, request: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    project, cluster = match.groups()
    return _unknown(emulator, project, cluster) or (200, _pool_list(emulator, request, project, cluster))


def _upgrade(emulator: Emulator, request: Recorded, match: re.Match[str]) -> tuple[int, Any]:
    project, cluster, pool = match.groups()
    answer = _unknown(emulator, project, cluster, pool) or _sync(emulator, request, (project, cluster, pool))
    if answer[0] == 200 and isinstance(answer[1], dict):
        request.job_id = str(answer[1].get("jobid", ""))
    elif answer[0] == 429:  # CCE's lock: the answer says the pool is busy, as a read showing it syncing would
        request.syncing = (pool,)
    return answer


def _unknown(emulator: Emulator, project_id: str, cluster_id: str, pool_id: str = "") -> tuple[int, Any] | None:
    """CCE's 404 for a cluster or node pool that does not exist (a strict emulator's only)."""
    if emulator.knows(project_id, cluster_id, pool_id):
        return None
    what = "node pool" if pool_id else "cluster"
    return 404, {"errorCode": "CCE.01404001", "errorMessage": f"The {what} does not exist"}


def _refused(emulator: Emulator, request: Recorded, project_id: str) -> tuple[int, Any] | None:
    """A project of another region (404) or credentials that are not valid for the project (401); else None."""
    home = emulator.regions.get(project_id)
    if request.region and home is not None and home != request.region:
        return 404, {"errorCode": "CCE.01404001", "errorMessage": f"No project {project_id} in this region"}
    problem = emulator.authenticate(request, project_id)
    if problem is not None:
        return 401, {"error_code": "APIG.1002", "error_msg": problem}
    return None


def _sync(emulator: Emulator, request: Recorded, ids: tuple[str, ...]) -> tuple[int, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        return 400, {"errorCode": "CCE.01400001", "errorMessage": "Content-Type must be application/json"}
    if request.headers.get("x-project-id") != ids[0]:
        return 400, {"errorCode": "CCE.01400001", "errorMessage": "X-Project-Id does not match the path"}
    try:
        body = json.loads(request.body)
    except ValueError:
        return 400, {"errorCode": "CCE.01400001", "errorMessage": "The body is not JSON"}
    return emulator.accept_sync(ids[0], ids[1], ids[2], body)


def _pool_list(emulator: Emulator, request: Recorded, project_id: str, cluster_id: str) -> dict[str, Any]:
    query = request.query
    pools = emulator.pools.get((project_id, cluster_id), {})
    shown = [p for p in pools if p != DEFAULT_POOL or _flag(query, "showDefaultNodePool")]
    advance = _flag(query, "advanceStatus")
    items = [emulator.pool_view(project_id, cluster_id, p, advance) for p in shown]
    return {"kind": "List", "apiVersion": "v3", "items": _shown(request, items)}


def _publish(emulator: Emulator, request: Recorded, topic: str) -> tuple[int, Any]:
    """SMN PublishMessage: a subject of at most 512 bytes and a message; the emulator keeps both."""
    body = request.json if request.body else None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return 400, {"error_code": "SMN.0001", "error_msg": "message is required"}
    subject = body.get("subject", "")
    if not isinstance(subject, str) or len(subject.encode("utf-8")) > 512:
        return 400, {"error_code": "SMN.0002", "error_msg": "subject is longer than 512 bytes"}
    if len(body["message"].encode("utf-8")) > 262144:  # huaweicloudsdksmn PublishMessageRequestBody.message
        return 400, {"error_code": "SMN.0003", "error_msg": "message is longer than 256 KB"}
    with emulator.lock:
        published = {"topic": topic, "subject": subject, "message": body["message"], "sim": emulator.clock()}
        emulator.published.append(published)
    return 200, {"request_id": uuid.uuid4().hex, "message_id": uuid.uuid4().hex}


def _control(emulator: Emulator, request: Recorded) -> tuple[int, Any]:
    """The emulator's own routes: `GET /_emulator/health` (what it is, for the local tools to find it),
    `POST /_emulator/reset` (its layout restored, its jobs ended), `POST /_emulator/environment` (the variables
    the function invoking it runs with, which the workers it runs get) and `GET /_emulator/metrics` (every
    Cloud Eye point received, oldest first)."""
    if request.path == "/_emulator/health" and request.method == "GET":
        return 200, {"emulator": "nodepool-sync", "url": emulator.url, "strict": emulator.strict}
    if request.path == "/_emulator/reset" and request.method == "POST" and emulator.on_reset is not None:
        emulator.on_reset()
        return 200, {"reset": True}
    if request.path == "/_emulator/environment" and request.method == "POST":  # what the workers it runs get
        environment = request.json if request.body else None
        if not (isinstance(environment, dict) and all(isinstance(v, str) for v in environment.values())):
            return 400, {"errorCode": "EMU.0400", "errorMessage": "a JSON object of strings is expected"}
        emulator.worker_environment = environment
        return 200, {"workers": "will run with it"}
    if request.path == "/_emulator/metrics" and request.method == "GET":
        with emulator.lock:
            return 200, {"points": list(emulator.metric_data)}
    return 404, {"errorCode": "CCE.01404001", "errorMessage": "Not found"}


def _invoke(emulator: Emulator, request: Recorded, project_id: str, urn: str) -> tuple[int, Any]:
    """FunctionGraph's AsyncInvokeFunction: 202 and a request id; the invocation is kept and, when the
    emulator has a runner (make run), run in a thread of its own, as FunctionGraph runs a worker."""
    if len(request.body) > 256 * 1024:
        return 413, {"error_code": "FSS.0413", "error_msg": "The request body is larger than 256 KB"}
    try:
        body = json.loads(request.body)
    except ValueError:
        return 400, {"error_code": "FSS.0400", "error_msg": "The body is not JSON"}
    invocation = {"region": request.region, "project_id": project_id, "urn": unquote(urn), "body": body}
    with emulator.lock:
        emulator.invocations.append(invocation)
    runner = emulator.run_async
    if runner is not None:
        threading.Thread(target=runner, args=(invocation,), daemon=True).start()
    return 202, {"request_id": uuid.uuid4().hex}


def _cluster_list(emulator: Emulator, project_id: str) -> dict[str, Any]:
    clusters = emulator.cluster_ids(project_id)
    items = [{"kind": "Cluster", "metadata": {"uid": uid, "name": name}} for uid, name in clusters.items()]
    return {"kind": "Cluster", "apiVersion": "v3", "items": items}


def _job(emulator: Emulator, job_id: str) -> tuple[int, Any]:
    job = emulator.jobs.get(job_id)
    if job is None:
        return 404, {"errorCode": "CCE.01404001", "errorMessage": "Job not found"}
    now = emulator.clock()
    phase = job.phase(now)
    status: dict[str, Any] = {"phase": phase}
    if phase == "Failed":
        status["reason"] = job.reason
    created, updated = go_time(job.created), go_time(job.updated(now))
    return 200, {
        "kind": "Job",
        "metadata": {"uid": job.id, "creationTimestamp": created, "updateTimestamp": updated},
        "spec": {
            "type": "SyncNodePool",
            "clusterUID": job.cluster_id,
            "resourceID": job.resource_id or job.nodepool_id,
        },
        "status": status,
    }


_Answer = Callable[["Emulator", Recorded, re.Match[str]], tuple[int, Any]]
_ROUTES: tuple[tuple[re.Pattern[str], str, _Answer], ...] = (
    (_SYNC, "POST", _upgrade),
    (_POOL, "GET", _pool),
    (_POOLS, "GET", _pools),
    (_CLUSTERS, "GET", lambda emulator, _, match: (200, _cluster_list(emulator, match.group(1)))),
    (_PUBLISH, "POST", lambda emulator, request, match: _publish(emulator, request, unquote(match.group(2)))),
    (_JOB, "GET", lambda emulator, _, match: _job(emulator, match.group(2))),
    (_INVOKE_ASYNC, "POST", lambda emulator, request, match: _invoke(emulator, request, *match.groups())),
    (_METRIC_DATA, "POST", lambda emulator, request, match: metric_data(emulator, request, match.group(1))),
)
