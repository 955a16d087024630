"""Names where people type them: the CLI's `status` takes a cluster's or a pool's name as well as its ID, read from
CCE's lists through the function's own Cloud (the allowlist and credentials it would use)."""

from __future__ import annotations

from collections.abc import Sequence

from handler.errors import SyncError
from handler.function import Function
from handler.runtime import RuntimeContext

from .clouds import UsageError, say
from .host import LocalContext

__all__ = ["resolve"]

_SECONDS = 30.0  # two list reads; a CLI waits no longer for a name


def _one(given: str, found: Sequence[tuple[str, str]], what: str) -> str:
    """The ID `given` names among (ID, name) pairs: itself when it is an ID, else the one pool or cluster of that
    name; unknown stays as given (the function then answers CCE's 404); ambiguous is a usage error."""
    if any(identifier == given for identifier, _ in found):
        return given
    matches = [identifier for identifier, name in found if name == given]
    if len(matches) > 1:
        raise UsageError(f"{len(matches)} {what}s are named {given[:64]!r}; give the ID: {', '.join(matches)}")
    if matches:
        say(f"{what} {given} is {matches[0]}")
        return matches[0]
    return given


def resolve(function: Function, cluster: str, pool: str) -> tuple[str, str]:
    """(cluster ID, pool ID) for what was typed; as typed when CCE's lists cannot be read."""
    project = function.settings.defaults().project_id
    cloud = function.cloud(RuntimeContext(LocalContext(_SECONDS)), "", project)
    try:
        cluster = _one(cluster, cloud.clusters(project), "cluster")
        pools = cloud.pools(project, cluster, True)
    except SyncError:
        return cluster, pool
    return cluster, _one(pool, [(state.pool_id, state.name) for state in pools], "pool")
