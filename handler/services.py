"""The calls to services other than CCE, each through the one request path (api.ApiClient): SMN's publish,
FunctionGraph's asynchronous invocation, IAM's listing of the projects an identity reaches, Cloud Eye's
CreateMetricData."""

import json
from urllib.parse import quote

from .api import ApiClient
from .credentials import Credential
from .runtime import Deadline
from .validation import ID_PATTERN

__all__ = ["ServiceClient"]


class ServiceClient(ApiClient):
    """SMN, FunctionGraph and IAM in one region."""

    def publish(
        self, project_id: str, topic_urn: str, subject: str, message: str, credential: Credential, deadline: Deadline
    ) -> str:
        """SMN PublishMessage through the same retry and 401-refresh path as CCE: its message id (huaweicloudsdksmn
        PublishMessageRequest, v2/model/publish_message_request_body.py)."""
        endpoint = self._settings.endpoint("smn", self.region)
        url = f"{endpoint}/v2/{quote(project_id, safe='')}/notifications/topics/{quote(topic_urn, safe=':')}/publish"
        data = json.dumps({"subject": subject, "message": message}).encode()
        # A message published twice is a nuisance, not a reset node: ambiguous failures are retried as reads are.
        reply, _ = self._request("POST", url, project_id, data, credential, deadline, service=("SMN", "SMN_ENDPOINT"))
        assert reply is not None
        answer = reply.json_or_none()
        message_id = answer.get("message_id") if isinstance(answer, dict) else None
        return message_id if isinstance(message_id, str) else ""

    def invoke_async(self, urn: str, body: bytes, project_id: str, credential: Credential, deadline: Deadline) -> str:
        """Invoke a function asynchronously (`POST /v2/{project_id}/fgs/functions/{function_urn}/invocations-async`,
        huaweicloudsdkfunctiongraph AsyncInvokeFunction): FunctionGraph's request id. A worker delivered twice
        starts nothing twice (CCE's state is the lock), so an ambiguous failure is tried again, as reads are."""
        endpoint = self._settings.endpoint("functiongraph", self.region)
        url = f"{endpoint}/v2/{quote(project_id, safe='')}/fgs/functions/{quote(urn, safe=':')}/invocations-async"
        reply, _ = self._request(
            "POST", url, project_id, body, credential, deadline, service=("FunctionGraph", "FGS_ENDPOINT")
        )
        assert reply is not None
        answer = reply.json_or_none()
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        return request_id if isinstance(request_id, str) else reply.request_id

    def put_metric_data(self, project_id: str, data: bytes, credential: Credential, deadline: Deadline) -> None:
        """Cloud Eye CreateMetricData (`POST /V1.0/{project_id}/metric-data`, a JSON list; 201 without a body:
        huaweicloudsdkces v1 CreateMetricDataRequest). A point sent twice is the same point: an ambiguous failure
        is tried again, as reads are."""
        url = f"{self._settings.endpoint('ces', self.region)}/V1.0/{quote(project_id, safe='')}/metric-data"
        self._request("POST", url, project_id, data, credential, deadline, service=("CES", "CES_ENDPOINT"))

    def list_projects(self, credential: Credential, deadline: Deadline) -> list[tuple[str, str, bool]]:
        """The projects the credential's identity can reach (IAM KeystoneListAuthProjects, `GET
        /v3/auth/projects`, huaweicloudsdkiam v3): (ID, name, enabled) each."""
        url = f"{self._settings.endpoint('iam', self.region)}/v3/auth/projects"
        reply, _ = self._request("GET", url, "", None, credential, deadline, service=("IAM", "IAM_ENDPOINT"))
        assert reply is not None
        listing = reply.json_or_none()
        projects = listing.get("projects") if isinstance(listing, dict) else None
        found = []
        for project in projects if isinstance(projects, list) else ():
            if not isinstance(project, dict):
                continue
            project_id, name = project.get("id"), project.get("name")
            if isinstance(project_id, str) and ID_PATTERN.fullmatch(project_id) and isinstance(name, str):
                found.append((project_id, name, project.get("enabled") is True))
        return found
