"""Tell a person through SMN: one message per reconcile pass, listing what needs attention since the last one.

`POST {SMN_ENDPOINT}/v2/{project_id}/notifications/topics/{topic_urn}/publish`, body `{"subject", "message"}`
(huaweicloudsdksmn PublishMessage; platform-facts.md, "Simple Message Notification"): the subject at most 512
bytes, the message plain text. Built from IDs, names and CCE's reasons only: never a secret.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from .credentials import Credential
from .runtime import Deadline
from .transport import Transport

__all__ = ["MAX_SUBJECT_BYTES", "compose", "publish"]

MAX_SUBJECT_BYTES = 512


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[: limit - 3].decode("utf-8", "ignore") + "..."


def compose(project_id: str, notable: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The subject (what needs attention, counted) and the message (one line per pool)."""
    kinds: dict[str, int] = {}
    for item in notable:
        kinds[item["what"]] = kinds.get(item["what"], 0) + 1
    summary = ", ".join(f"{count} {what}" for what, count in sorted(kinds.items()))
    subject = _cut(f"nodepool-sync needs attention: {summary} (project {project_id})", MAX_SUBJECT_BYTES)
    lines = [f"nodepool-sync found in project {project_id}:", ""]
    for item in notable:
        job = f", job {item['jobid']}" if item.get("jobid") else ""
        reason = f": {str(item['reason'])[:300]}" if item.get("reason") else ""
        pool = f"node pool {item['name']} ({item['nodepool_id']})"
        lines.append(f"- cluster {item['cluster_id']}, {pool}: {item['what']}{job}{reason}")
    return subject, "\n".join(lines) + "\n"


def publish(
    transport: Transport,
    endpoint: str,
    topic_urn: str,
    project_id: str,
    credential: Credential,
    subject: str,
    message: str,
    deadline: Deadline,
) -> str:
    """Publish one message through the one transport: its message id; raises TransportError or ValueError."""
    import json

    url = f"{endpoint}/v2/{quote(project_id, safe='')}/notifications/topics/{quote(topic_urn, safe=':')}/publish"
    body = json.dumps({"subject": subject, "message": message}).encode()
    headers = {"Content-Type": "application/json", "X-Project-Id": project_id}
    reply = transport.exchange(
        "POST", url, {**headers, **credential.authorize("POST", url, headers, body)}, body, deadline
    )
    if not 200 <= reply.status < 300:
        raise ValueError(f"SMN answered HTTP {reply.status}")
    answer = reply.json()
    message_id = answer.get("message_id") if isinstance(answer, dict) else None
    return message_id if isinstance(message_id, str) else ""
