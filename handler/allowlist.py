"""SYNC_ALLOWED_TARGETS as a value: what a sync may reach, and the one refusal when it may not."""

from typing import NamedTuple

from .errors import TargetNotAllowed

__all__ = ["Allowlist"]


class Allowlist(NamedTuple):
    """SYNC_ALLOWED_TARGETS: the (project, cluster, node pool) a sync may reach; `*` matches a whole segment.

    A `cluster/pool` entry means the function's own project; `project/cluster/pool` names the project (or `*`).
    Unset, everything is allowed (`limited` is False). `refusal` is the one judgement and the one message.
    """

    limited: bool = False
    entries: tuple[tuple[str, str, str], ...] = ()

    def allows(self, own_project: str, project_id: str, cluster_id: str = "", nodepool_id: str = "") -> bool:
        """Whether the pool (or, without one, any pool of the cluster; without a cluster, of the project) may be
        synced."""
        return not self.limited or any(
            _matches(project, project_id, own_project)
            and (not cluster_id or cluster in ("*", cluster_id))
            and (not nodepool_id or pool in ("*", nodepool_id))
            for project, cluster, pool in self.entries
        )

    def refusal(
        self, own_project: str, project_id: str, cluster_id: str = "", nodepool_id: str = ""
    ) -> TargetNotAllowed | None:
        """None when allowed; otherwise the refusal, in one shape whatever asked."""
        if self.allows(own_project, project_id, cluster_id, nodepool_id):
            return None
        what = f"project {project_id}"
        what = f"cluster {cluster_id} of {what}" if cluster_id else what
        what = f"node pool {nodepool_id} of {what}" if nodepool_id else what
        return TargetNotAllowed(f"{what} is outside SYNC_ALLOWED_TARGETS")


def _matches(entry: str, project_id: str, own_project: str) -> bool:
    return entry == "*" or project_id == (entry or own_project)
