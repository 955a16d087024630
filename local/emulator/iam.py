"""The emulated IAM: users and their passwords, tokens, access keys; issuing a token (POST /v3/auth/tokens,
password method) and checking a request's credentials, a token or an SDK-HMAC-SHA256 signature (verified with
code written here from the published algorithm, independent of handler/credentials.py)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from .records import Recorded

__all__ = ["IamState", "verify_signature"]


class IamState:
    """IAM's side of the emulator."""

    lock: threading.RLock
    users: dict[tuple[str, str], str]
    tokens: dict[str, tuple[str, float]]  # token -> (project_id or "*", expires epoch)
    keys: dict[str, tuple[str, str | None]]  # AK -> (SK, security token or None)
    token_lifetime: float
    omit_expires_at: bool
    projects: dict[str, tuple[str, bool]]  # IAM's projects: ID -> (name, enabled)

    def add_project(self, project_id: str, name: str, enabled: bool = True) -> None:
        """A project IAM lists (`GET /v3/auth/projects`): named after its region, a region's subproject, or not."""
        self.projects[project_id] = (name, enabled)

    def project_list(self) -> dict[str, Any]:
        """KeystoneListAuthProjects' answer (huaweicloudsdkiam v3 ProjectResult: id, name, enabled, ...)."""
        listed = [
            {"id": uid, "name": name, "enabled": enabled, "domain_id": "d0main", "parent_id": "d0main"}
            for uid, (name, enabled) in self.projects.items()
        ]
        return {"projects": listed, "links": {"self": "/v3/auth/projects"}}

    def add_user(self, domain: str, name: str, password: str) -> None:
        self.users[(domain, name)] = password

    def add_token(self, token: str, project_id: str = "*", lifetime: float = 86400.0) -> None:
        self.tokens[token] = (project_id, time.time() + lifetime)

    def add_keys(self, access_key: str, secret_key: str, security_token: str | None = None) -> None:
        self.keys[access_key] = (secret_key, security_token)

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

    def authenticate(self, request: Recorded, project_id: str | None) -> str | None:
        """None when the request carries valid credentials for the project (any project: None), else the reason."""
        token = request.headers.get("x-auth-token")
        if token is not None:
            scope, expires = self.tokens.get(token, ("", 0.0))
            if expires <= time.time():
                return "Incorrect token or token resolution failed"
            if project_id is not None and scope not in ("*", project_id):
                return "The token is scoped to another project"
            return None
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("SDK-HMAC-SHA256 "):
            return verify_signature(request, self.keys)
        return "No credentials: X-Auth-Token or an SDK-HMAC-SHA256 signature is required"


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
