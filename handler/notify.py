"""Tell a person through SMN: one message per reconcile pass, listing what needs attention since the last one.

The message is published by cce.CCEClient.publish (`POST {SMN_ENDPOINT}/v2/{project_id}/notifications/topics/
{topic_urn}/publish`, huaweicloudsdksmn PublishMessage, v2/model/publish_message_request_body.py): the
subject at most 512 bytes, the message at most 256 KB of UTF-8. Built from IDs, names and CCE's reasons only.
"""

from collections.abc import Sequence

from .reports import Notable

__all__ = ["MAX_MESSAGE_BYTES", "MAX_SUBJECT_BYTES", "compose"]

MAX_SUBJECT_BYTES = 512
MAX_MESSAGE_BYTES = 256 * 1024 - 1024  # SMN's 256 KB, less room for the line that counts what was left out
MAX_REASON = 300


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[: limit - 3].decode("utf-8", "ignore") + "..."


def compose(project_id: str, notable: Sequence[Notable], pass_id: str = "") -> tuple[str, str]:
    """The subject (what needs attention, counted) and the message (one line per pool, cut to fit SMN), ending
    with the pass it comes from: a worker FunctionGraph delivers twice repeats its pass's message, not a new one."""
    kinds: dict[str, int] = {}
    for item in notable:
        kinds[item.what.value] = kinds.get(item.what.value, 0) + 1
    summary = ", ".join(f"{count} {what}" for what, count in sorted(kinds.items()))
    subject = _cut(f"nodepool-sync needs attention: {summary} (project {project_id})", MAX_SUBJECT_BYTES)
    lines = [f"nodepool-sync found in project {project_id}:", ""]
    size = sum(len(line.encode("utf-8")) + 1 for line in lines)
    for index, item in enumerate(notable):
        job = f", job {item.jobid}" if item.jobid else ""
        reason = f": {_cut(item.reason, MAX_REASON)}" if item.reason else ""
        if item.pool is None:  # the whole pass
            line = f"- {item.what.value}{reason}; nothing starts until they age out (or ignore_halt)"
        else:
            pool = f"node pool {item.pool.name} ({item.pool.pool_id})"
            line = f"- cluster {item.cluster_id}, {pool}: {item.what.value}{job}{reason}"
        size += len(line.encode("utf-8")) + 1
        if size > MAX_MESSAGE_BYTES:
            lines.append(f"... and {len(notable) - index} more, left out to fit SMN's message size")
            break
        lines.append(line)
    if pass_id:
        lines += ["", f"pass {pass_id}"]
    return subject, "\n".join(lines) + "\n"
