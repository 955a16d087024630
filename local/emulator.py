"""A local CCE + IAM emulator: a real threaded HTTP server on loopback, for tests, `make run` and the CLI.

IAM: POST /v3/auth/tokens (password method). CCE: the node pool sync, GET node pool, GET node pool list,
GET cluster list, GET job. Node pool reads answer as the SDK documents (huaweicloudsdkcce ShowNodePoolRequest,
ListNodePoolsRequest): without `advanceStatus=true` the status reflects only the default scaling group, and the
list hides `DefaultPool` unless asked `showDefaultNodePool=true`. Every request is recorded; faults can be
injected for the next N matching requests. Signatures are verified with code written here from the published
algorithm, independent of handler/credentials.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlsplit

from jsonschema import Draft202012Validator
from handler.endpoints import REGION_PATTERN

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "cce-upgrade-request.schema.json"
_POOL = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools/([^/]+)$")
_POOLS = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools$")
_CLUSTERS = re.compile(r"^/api/v3/projects/([^/]+)/clusters$")
_PUBLISH = re.compile(r"^/v2/([^/]+)/notifications/topics/([^/]+)/publish$")
_SYNC = re.compile(r"^/api/v3/projects/([^/]+)/clusters/([^/]+)/nodepools/([^/]+)/operation/upgrade$")
_JOB = re.compile(r"^/api/v3/projects/([^/]+)/jobs/([^/]+)$")
_INVOKE_ASYNC = re.compile(r"^/v2/([^/]+)/fgs/functions/([^/]+)/invocations-async$")
# An endpoint with {region} (CCE_ENDPOINT=http://127.0.0.1:PORT/{region}) puts the region first in the path.
_REGION_PREFIX = re.compile(rf"^/({REGION_PATTERN})(/(?:api|v2|v3)/.*)$")
DEFAULT_POOL = "DefaultPool"


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
    """A time as CCE's jobs give it: Go's default format with nanoseconds (`time.Time.String()`; the Job model
    does not say which format: platform-facts.md), 9 fractional digits as in the CCE API reference's examples."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    nanoseconds = f"{moment.microsecond:06d}{int(epoch * 1e9) % 1000:03d}"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + nanoseconds + " +0000 UTC"


class Emulator:
    """The emulated cloud; start() binds a free loopback port, `url` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.users: dict[tuple[str, str], str] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (project_id or "*", expires epoch)
        self.keys: dict[str, tuple[str, str | None]] = {}  # AK -> (SK, security token or None)
        self.pools: dict[tuple[str, str], dict[str, str]] = {}  # (project, cluster) -> {pool id: name}
        self.clusters: dict[str, dict[str, str]] = {}  # project -> {cluster id: name}, besides those with pools
        self.nodes: dict[tuple[str, str, str], Nodes] = {}  # pools whose node counts are modelled
        self.published: list[dict[str, str]] = []  # SMN messages: topic, subject, message
        self.jobs: dict[str, Job] = {}
        self.latest_job: dict[tuple[str, str, str], Job] = {}
        self.busy: dict[tuple[str, str, str], str] = {}  # pools shown as synchronizing -> job id
        self.token_lifetime = 86400.0
        self.omit_expires_at = False
        self.job_seconds = 0.0
        self.job_outcome = "Success"
        # Pools have several scaling groups and a sync's nodes sit outside the default one, so a read without
        # advanceStatus=true (the default group only) does not see the sync running.
        self.multi_group = True
        self.lock_running = True  # a sync on a pool whose operation still runs answers 429 CCE.01429002
        self.latency = 0.0  # seconds each CCE request takes before it is answered (a far-away region, say)
        # As CCE: an unknown cluster, node pool or job is a 404 (CCE.01404001). Off for the tests' scratch emulator,
        # which syncs pools it was never told of; on for `make emulator` and the local tools.
        self.strict = False
        self.job_seconds_range: tuple[float, float] | None = None  # each job a random duration in this range
        self.on_reset: Any = None  # `python -m local emulator --reset`: restores the layout (the CLI sets it)
        self.in_flight = self.peak_in_flight = 0  # CCE requests being answered now, and the most at once
        self.regions: dict[str, str] = {}  # project -> its region: a request naming another region is a 404
        self.invocations: list[dict[str, Any]] = []  # asynchronous invocations: region, project_id, urn, body
        self.run_async: Any = None  # called with each invocation, in a thread of its own (make run's workers)
        self._validator = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
        self._server: ThreadingHTTPServer | None = None

    # --- control -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="emulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def add_user(self, domain: str, name: str, password: str) -> None:
        self.users[(domain, name)] = password

    def add_token(self, token: str, project_id: str = "*", lifetime: float = 86400.0) -> None:
        self.tokens[token] = (project_id, time.time() + lifetime)

    def add_keys(self, access_key: str, secret_key: str, security_token: str | None = None) -> None:
        self.keys[access_key] = (secret_key, security_token)

    def add_pool(
        self,
        project_id: str,
        cluster_id: str,
        pool_id: str,
        name: str,
        nodes: int | None = None,
        synced: int | None = None,
    ) -> None:
        """A node pool; with `nodes`, its status reports node counts (`synced` of them on the template)."""
        self.pools.setdefault((project_id, cluster_id), {})[pool_id] = name
        if nodes is not None:
            self.nodes[(project_id, cluster_id, pool_id)] = Nodes(nodes, nodes if synced is None else synced)

    def add_cluster(self, project_id: str, cluster_id: str, name: str) -> None:
        self.clusters.setdefault(project_id, {})[cluster_id] = name

    def knows(self, project_id: str, cluster_id: str, pool_id: str = "") -> bool:
        """Whether the cluster (and the pool) exist here; anything does when not strict."""
        if not self.strict:
            return True
        if cluster_id not in self.cluster_ids(project_id):
            return False
        return not pool_id or pool_id in self.pools.get((project_id, cluster_id), {})

    def cluster_ids(self, project_id: str) -> dict[str, str]:
        """The project's clusters: those added, and those with node pools."""
        found = dict(self.clusters.get(project_id, {}))
        for project, cluster in self.pools:
            if project == project_id:
                found.setdefault(cluster, cluster)
        return found

    def update_template(self, project_id: str, cluster_id: str, pool_id: str) -> dict[str, Any]:
        """Change the pool's template, as a user would: every node drifts. Returns the CTS trace CCE would record."""
        with self.lock:
            nodes = self.nodes[(project_id, cluster_id, pool_id)]
            nodes.synced, nodes.drifted_at = 0, time.time()
        return cts_trace(project_id, cluster_id, pool_id, self.pools[(project_id, cluster_id)][pool_id])

    def add_job(
        self,
        project_id: str,
        cluster_id: str,
        pool_id: str,
        outcome: str,
        ended_ago: float,
        seconds: float = 600.0,
        resource_id: str = "",
        reason: str = "Node reset failed",
    ) -> Job:
        """The pool's latest job, ended (`outcome`) `ended_ago` seconds ago after running `seconds`; a negative
        `ended_ago` is a job still running that has run `seconds` + `ended_ago` so far."""
        created = time.time() - ended_ago - seconds
        job = Job(str(uuid.uuid4()), project_id, cluster_id, pool_id, created, seconds, outcome, resource_id, reason)
        with self.lock:
            self.jobs[job.id] = job
            self.latest_job[(project_id, cluster_id, pool_id)] = job
        return job

    def set_busy(self, project_id: str, cluster_id: str, pool_id: str, job_id: str = "running-job") -> None:
        self.busy[(project_id, cluster_id, pool_id)] = job_id

    def inject(self, **fault: Any) -> Fault:
        """Queue a fault (see Fault's fields); the first matching queued fault applies."""
        made = Fault(**fault)
        with self.lock:
            self.faults.append(made)
        return made

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.invocations.clear()
            self.regions.clear()
            self.in_flight = self.peak_in_flight = 0
            self.latency = 0.0
            self.busy.clear()
            self.jobs.clear()
            self.latest_job.clear()
            self.nodes.clear()
            self.clusters.clear()
            self.published.clear()

    def cce_requests(self, method: str | None = None) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.is_cce and (method is None or r.method == method)]

    def syncs(self) -> list[Recorded]:
        return [r for r in self.cce_requests("POST") if r.path.endswith("/operation/upgrade")]

    @property
    def request_ids(self) -> list[str]:
        """The X-Request-Id answered to each CCE request, in order."""
        return [r.request_id for r in self.cce_requests()]

    def iam_requests(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.is_iam]

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    # --- behaviour -----------------------------------------------------------------------------------------

    def issue_token(self, body: Any) -> tuple[int, dict[str, str], Any]:
        try:
            identity = body["auth"]["identity"]
            user = identity["password"]["user"]
            domain, name, password = user["domain"]["name"], user["name"], user["password"]
            project_id = body["auth"]["scope"]["project"]["id"]
            assert identity["methods"] == ["password"]
        except (KeyError, TypeError, AssertionError):
            return 400, {}, {"error": {"code": 400, "message": "The request body is invalid.", "title": "Bad Request"}}
        if self.users.get((domain, name)) != password:
            return (
                401,
                {},
                {"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}},
            )
        token = "MIIemu" + secrets.token_urlsafe(1500)
        expires = time.time() + self.token_lifetime
        with self.lock:
            self.tokens[token] = (project_id, expires)
        expires_at = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        answer: dict[str, Any] = {"methods": ["password"], "project": {"id": project_id}, "user": {"name": name}}
        if not self.omit_expires_at:
            answer["expires_at"] = expires_at
        return 201, {"X-Subject-Token": token}, {"token": answer}

    def authenticate(self, request: Recorded, project_id: str) -> str | None:
        """None when the request carries valid credentials for the project, else the reason."""
        token = request.headers.get("x-auth-token")
        if token is not None:
            scope, expires = self.tokens.get(token, ("", 0.0))
            if expires <= time.time():
                return "Incorrect token or token resolution failed"
            if scope not in ("*", project_id):
                return "The token is scoped to another project"
            return None
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("SDK-HMAC-SHA256 "):
            return verify_signature(request, self.keys)
        return "No credentials: X-Auth-Token or an SDK-HMAC-SHA256 signature is required"

    def job_for(self, project_id: str, cluster_id: str, pool_id: str) -> Job | None:
        """The pool's latest job while it runs (one lookup: benchmarks post thousands of jobs)."""
        job = self.latest_job.get((project_id, cluster_id, pool_id))
        if job is not None and job.phase(time.time()) not in ("Success", "Failed"):
            return job
        return None

    def pool_view(self, project_id: str, cluster_id: str, pool_id: str, advance: bool = True) -> dict[str, Any]:
        """The node pool as CCE shows it; `advance` is the query's advanceStatus=true (the whole pool)."""
        running = self.job_for(project_id, cluster_id, pool_id)
        busy_job = self.busy.get((project_id, cluster_id, pool_id)) or (running.id if running else None)
        name = self.pools.get((project_id, cluster_id), {}).get(pool_id, pool_id)
        syncing = busy_job is not None and (advance or not self.multi_group)
        # NodePoolCondition (huaweicloudsdkcce): type, status, reason, message, lastProbeTime, lastTransitTime.
        # No `phase`: deprecated, and its "Synchronizing" means scaling, not a configuration sync.
        probed = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {
            "type": "ConfigurationSynchronizing",
            "status": "True" if syncing else "False",
            "reason": "Synchronizing" if syncing else "",
            "message": "",
            "lastProbeTime": probed,
            "lastTransitTime": probed,
        }
        status: dict[str, Any] = {"conditions": [condition]}
        latest = self.latest_job.get((project_id, cluster_id, pool_id))
        if busy_job or latest is not None:  # jobId: the job of the pool's latest operation, running or not
            status["jobId"] = busy_job or latest.id  # type: ignore[union-attr]
        nodes = self.nodes.get((project_id, cluster_id, pool_id))
        if nodes is not None:
            if latest is not None and latest.created >= nodes.drifted_at and latest.phase(time.time()) == "Success":
                nodes.synced = nodes.current  # a finished sync brings every node to the template
            status.update(currentNode=nodes.current, configurationSyncedNodeCount=nodes.synced)
        return {
            "kind": "NodePool",
            "apiVersion": "v3",
            "metadata": {"name": name, "uid": pool_id},
            "spec": {"type": "vm"},
            "status": status,
        }

    def accept_sync(self, project_id: str, cluster_id: str, pool_id: str, body: Any) -> tuple[int, Any]:
        errors = sorted(self._validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": f"Invalid request: {errors[0].message[:200]}"}
        if body["spec"]["nodePoolID"] != pool_id:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "spec.nodePoolID does not match the path"}
        password = body["spec"].get("nodeTemplate", {}).get("login", {}).get("userPassword", {}).get("password")
        if password is not None and not _is_salted(password):
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "userPassword.password must be salted"}
        if self.lock_running and (
            self.job_for(project_id, cluster_id, pool_id) or (project_id, cluster_id, pool_id) in self.busy
        ):
            # CCE's 429 CCE.01429002: "resource locked by another request" (the API reference's error codes)
            return 429, {"errorCode": "CCE.01429002", "errorMessage": "The resource is locked by a running operation"}
        seconds = random.uniform(*self.job_seconds_range) if self.job_seconds_range else self.job_seconds
        job = Job(str(uuid.uuid4()), project_id, cluster_id, pool_id, time.time(), seconds, self.job_outcome)
        with self.lock:
            self.jobs[job.id] = job
            self.latest_job[(project_id, cluster_id, pool_id)] = job
        return 200, {"jobid": job.id}


def cts_trace(
    project_id: str,
    cluster_id: str,
    pool_id: str,
    name: str,
    trace_name: str = "updateNodePool",
    code: int = 200,
    console: bool = False,
) -> dict[str, Any]:
    """The CTS trace CCE records for an operation on a node pool, as FunctionGraph's CTS trigger delivers it.

    Field names and kinds from CTS's documented and captured traces (platform-facts.md; tests/events/README.md):
    `code` is a number. An API call's trace carries the path in `resource_url` and `message`; a console action's
    (`console=True`) has `code` 0, no `resource_url`, a message without a path and, as captured, the resource's
    name as `resource_id`."""
    now = int(time.time() * 1000)
    path = f"/api/v3/projects/{project_id}/clusters/{cluster_id}/nodepools/{pool_id}"
    trace: dict[str, Any] = {
        "trace_id": str(uuid.uuid4()),
        "trace_name": trace_name,
        "trace_type": "ConsoleAction" if console else "ApiCall",
        "trace_rating": "normal",
        "trace_status": "normal",
        "service_type": "CCE",
        "resource_type": "nodepool",
        "resource_id": name if console else pool_id,
        "resource_name": name,
        "message": f"update node pool[{name}]" if console else f"PUT {path}, code {code}",
        "code": 0 if console else code,
        "request": {},
        "response": {},
        "user": {"name": "ops-admin", "id": "c0ffee", "domain": {"name": "acme", "id": "d0main"}},
        "source_ip": "203.0.113.9",
        "time": now,
        "record_time": now,
        "project_id": project_id,
        "api_version": "v3",
        "request_id": uuid.uuid4().hex,
    }
    if not console:
        trace["resource_url"] = path
    return {"cts": trace}


def cloud_event(trace: dict[str, Any]) -> dict[str, Any]:
    """The same trace as EventGrid delivers a cloud-service event from its OFFICIAL channel."""
    return {
        "id": str(uuid.uuid4()),
        "specversion": "1.0",
        "source": "HC.CCE",
        "type": "CCE:CloudTrace:ApiCall",
        "datacontenttype": "application/json",
        "subject": trace["cts"]["resource_name"],
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": trace["cts"],
    }


def _flag(query: str, name: str) -> bool:
    """A boolean query parameter as CCE reads it: true only when given as `true`."""
    return parse_qs(query).get(name) == ["true"]


def _is_salted(value: str) -> bool:
    from handler.validation import is_salted_password  # the one statement of the salted form

    return is_salted_password(value)


def verify_signature(request: Recorded, keys: dict[str, tuple[str, str | None]]) -> str | None:
    """Check an SDK-HMAC-SHA256 Authorization header against the request as received."""
    match = re.fullmatch(
        r"SDK-HMAC-SHA256 Access=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)",
        request.headers.get("authorization", ""),
    )
    if not match:
        return "Malformed Authorization header"
    access_key, signed, signature = match.groups()
    if access_key not in keys:
        return "Unknown access key"
    secret_key, security_token = keys[access_key]
    if security_token is not None and request.headers.get("x-security-token") != security_token:
        return "Missing or wrong X-Security-Token"
    date = request.headers.get("x-sdk-date", "")
    try:
        when = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return "Missing or malformed X-Sdk-Date"
    if abs(datetime.now(timezone.utc) - when) > timedelta(minutes=15):
        return "X-Sdk-Date is more than 15 minutes off"
    names = signed.split(";")
    if "host" not in names or any(n not in request.headers for n in names):
        return "A signed header is missing"
    path = "/".join(quote(part, safe="~") for part in unquote(request.raw_path or request.path).split("/"))
    query = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}"
        for k, v in sorted(parse_qsl(request.query, keep_blank_values=True))
    )
    lines = [
        request.method,
        path if path.endswith("/") else path + "/",
        query,
        "".join(f"{n}:{request.headers[n].strip()}\n" for n in names),
        signed,
        hashlib.sha256(request.body).hexdigest(),
    ]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    expected = hmac.new(secret_key.encode(), f"SDK-HMAC-SHA256\n{date}\n{digest}".encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, signature) else "Signature mismatch"


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # many concurrent clients: the concurrency tests, the fleet bench (20 workers x 8)


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle delay: otherwise delayed ACKs add ~40 ms to every exchange.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        if self.recorded is not None:
            self.recorded.status = status
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        # Two lengths that disagree: urllib3 refuses the answer (InvalidHeader) once the request was sent.
        self.send_header("Content-Length", f"{len(data)}, {len(data) + 1}" if self.bad_length else str(len(data)))
        if self.drip_head:
            head, self._headers_buffer = b"".join([*self._headers_buffer, b"\r\n"]), []
            if not self._drip(head, self.drip_head):
                return
        else:
            self.end_headers()
        if self.drip:
            self._drip(data, self.drip)
        else:
            self.wfile.write(data)

    def _drip(self, data: bytes, delay: float) -> bool:
        """Send `data` a byte at a time, `delay` seconds apart; False when the client gave up meanwhile."""
        try:
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                time.sleep(delay)
        except OSError:
            self.close_connection = True
            return False
        return True

    def _receive(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path, region = parts.path, ""
        if prefixed := _REGION_PREFIX.match(path):
            region, path = prefixed.groups()
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = Recorded(self.command, path, parts.query, headers, body, region=region, raw_path=parts.path)
        with self.emulator.lock:
            self.emulator.requests.append(recorded)
        return recorded

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    drip = 0.0
    bad_length = False
    drip_head = 0.0
    recorded: Recorded | None = None

    def _dispatch(self) -> None:
        request = self.recorded = self._receive()
        if not request.is_cce:
            self._handle(request)
            return
        emulator = self.emulator
        with emulator.lock:
            emulator.in_flight += 1
            emulator.peak_in_flight = max(emulator.peak_in_flight, emulator.in_flight)
        try:
            if emulator.latency:
                time.sleep(emulator.latency)
            self._handle(request)
        finally:
            with emulator.lock:
                emulator.in_flight -= 1

    def _handle(self, request: Recorded) -> None:
        emulator = self.emulator
        fault = emulator.take_fault(request.method, request.path)
        self.drip = fault.drip if fault is not None else 0.0
        self.bad_length = fault is not None and fault.bad_length
        self.drip_head = fault.drip_head if fault is not None else 0.0
        request_id = request.request_id = uuid.uuid4().hex
        if fault is not None and fault.process_first:
            self._route(request, request_id, send=False)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.redirect_to:
            self._answer(fault.status or 307, {}, {"Location": fault.redirect_to, "X-Request-Id": request_id})
            return
        if fault is not None and fault.raw is not None:
            self._answer(fault.status or 200, raw=fault.raw, headers={"X-Request-Id": request_id})
            return
        if fault is not None and fault.malformed:
            self._answer(fault.status or 200, raw=b"<html>not json", headers={"X-Request-Id": request_id})
            return
        if fault is not None and fault.status is not None:
            body = (
                fault.body
                if fault.body is not None
                else {"errorCode": f"CCE.01{fault.status}000", "errorMessage": "injected fault"}
            )
            if fault.echo_token:
                token = request.headers.get("x-auth-token", "")
                body = {"errorCode": f"CCE.01{fault.status}000", "errorMessage": f"token {token} was not accepted"}
            self._answer(fault.status, body, {"X-Request-Id": request_id, **fault.headers})
            return
        self._route(request, request_id, send=True)

    def _route(self, request: Recorded, request_id: str, send: bool) -> None:
        emulator = self.emulator
        status, headers, body = (
            404,
            {"X-Request-Id": request_id},
            {"errorCode": "CCE.01404001", "errorMessage": "Not found"},
        )
        path = request.path
        if path.startswith("/_emulator/"):
            status, body = self._control(request)
        elif request.method == "POST" and path == "/v3/auth/tokens":
            try:
                parsed = json.loads(request.body)
            except ValueError:
                parsed = None
            status, extra, body = emulator.issue_token(parsed)
            headers.update(extra)
        elif (match := _SYNC.match(path)) and request.method == "POST":
            status, body = self._authorized(
                request, match.group(1), lambda: self._unknown(*match.groups()) or self._sync(request, match.groups())
            )
        elif (match := _POOL.match(path)) and request.method == "GET":
            advance = _flag(request.query, "advanceStatus")
            status, body = self._authorized(
                request,
                match.group(1),
                lambda: self._unknown(*match.groups()) or (200, emulator.pool_view(*match.groups(), advance=advance)),
            )
        elif (match := _POOLS.match(path)) and request.method == "GET":
            status, body = self._authorized(
                request,
                match.group(1),
                lambda: self._unknown(*match.groups()) or (200, self._pool_list(*match.groups(), query=request.query)),
            )
        elif (match := _CLUSTERS.match(path)) and request.method == "GET":
            status, body = self._authorized(request, match.group(1), lambda: (200, self._cluster_list(match.group(1))))
        elif (match := _PUBLISH.match(path)) and request.method == "POST":
            status, body = self._authorized(
                request, match.group(1), lambda: self._publish(request, unquote(match.group(2)))
            )
        elif (match := _JOB.match(path)) and request.method == "GET":
            status, body = self._authorized(request, match.group(1), lambda: self._job(match.group(2)))
        elif (match := _INVOKE_ASYNC.match(path)) and request.method == "POST":
            status, body = self._authorized(request, match.group(1), lambda: self._invoke(request, *match.groups()))
        if send:
            self._answer(status, body, headers)

    def _unknown(self, project_id: str, cluster_id: str, pool_id: str = "") -> tuple[int, Any] | None:
        """CCE's 404 for a cluster or node pool that does not exist (a strict emulator's only)."""
        if self.emulator.knows(project_id, cluster_id, pool_id):
            return None
        what = "node pool" if pool_id else "cluster"
        return 404, {"errorCode": "CCE.01404001", "errorMessage": f"The {what} does not exist"}

    def _authorized(self, request: Recorded, project_id: str, then: Any) -> tuple[int, Any]:
        home = self.emulator.regions.get(project_id)
        if request.region and home is not None and home != request.region:
            return 404, {"errorCode": "CCE.01404001", "errorMessage": f"No project {project_id} in this region"}
        problem = self.emulator.authenticate(request, project_id)
        if problem is not None:
            return 401, {"error_code": "APIG.1002", "error_msg": problem}
        result: tuple[int, Any] = then()
        return result

    def _sync(self, request: Recorded, ids: tuple[str, ...]) -> tuple[int, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "Content-Type must be application/json"}
        if request.headers.get("x-project-id") != ids[0]:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "X-Project-Id does not match the path"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {"errorCode": "CCE.01400001", "errorMessage": "The body is not JSON"}
        return self.emulator.accept_sync(ids[0], ids[1], ids[2], body)

    def _pool_list(self, project_id: str, cluster_id: str, query: str) -> dict[str, Any]:
        pools = self.emulator.pools.get((project_id, cluster_id), {})
        shown = [p for p in pools if p != DEFAULT_POOL or _flag(query, "showDefaultNodePool")]
        advance = _flag(query, "advanceStatus")
        return {
            "kind": "List",
            "apiVersion": "v3",
            "items": [self.emulator.pool_view(project_id, cluster_id, p, advance) for p in shown],
        }

    def _publish(self, request: Recorded, topic: str) -> tuple[int, Any]:
        """SMN PublishMessage: a subject of at most 512 bytes and a message; the emulator keeps both."""
        body = request.json if request.body else None
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return 400, {"error_code": "SMN.0001", "error_msg": "message is required"}
        subject = body.get("subject", "")
        if not isinstance(subject, str) or len(subject.encode("utf-8")) > 512:
            return 400, {"error_code": "SMN.0002", "error_msg": "subject is longer than 512 bytes"}
        if len(body["message"].encode("utf-8")) > 262144:  # huaweicloudsdksmn PublishMessageRequestBody.message
            return 400, {"error_code": "SMN.0003", "error_msg": "message is longer than 256 KB"}
        with self.emulator.lock:
            self.emulator.published.append({"topic": topic, "subject": subject, "message": body["message"]})
        return 200, {"request_id": uuid.uuid4().hex, "message_id": uuid.uuid4().hex}

    def _control(self, request: Recorded) -> tuple[int, Any]:
        """The emulator's own routes: `GET /_emulator/health` (what it is, for the local tools to find it) and
        `POST /_emulator/reset` (its layout restored, its jobs ended)."""
        emulator = self.emulator
        if request.path == "/_emulator/health" and request.method == "GET":
            return 200, {"emulator": "nodepool-sync", "url": emulator.url, "strict": emulator.strict}
        if request.path == "/_emulator/reset" and request.method == "POST" and emulator.on_reset is not None:
            emulator.on_reset()
            return 200, {"reset": True}
        return 404, {"errorCode": "CCE.01404001", "errorMessage": "Not found"}

    def _invoke(self, request: Recorded, project_id: str, urn: str) -> tuple[int, Any]:
        """FunctionGraph's AsyncInvokeFunction: 202 and a request id; the invocation is kept and, when the
        emulator has a runner (make run), run in a thread of its own, as FunctionGraph runs a worker."""
        if len(request.body) > 256 * 1024:
            return 413, {"error_code": "FSS.0413", "error_msg": "The request body is larger than 256 KB"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {"error_code": "FSS.0400", "error_msg": "The body is not JSON"}
        invocation = {"region": request.region, "project_id": project_id, "urn": unquote(urn), "body": body}
        with self.emulator.lock:
            self.emulator.invocations.append(invocation)
        runner = self.emulator.run_async
        if runner is not None:
            threading.Thread(target=runner, args=(invocation,), daemon=True).start()
        return 202, {"request_id": uuid.uuid4().hex}

    def _cluster_list(self, project_id: str) -> dict[str, Any]:
        clusters = self.emulator.cluster_ids(project_id)
        items = [{"kind": "Cluster", "metadata": {"uid": uid, "name": name}} for uid, name in clusters.items()]
        return {"kind": "Cluster", "apiVersion": "v3", "items": items}

    def _job(self, job_id: str) -> tuple[int, Any]:
        job = self.emulator.jobs.get(job_id)
        if job is None:
            return 404, {"errorCode": "CCE.01404001", "errorMessage": "Job not found"}
        now = time.time()
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
