"""Kind: a reconcile pass (a timer tick, a reconcile document): read the pools' state, decide per pool, start
what the rules allow (reconcile.run_pass). Its renderer also answers for a worker's pass and a change's."""

from typing import Any, NamedTuple

from ..cloud import Cloud
from ..decide import Action, Decision
from ..errors import TargetNotAllowed
from ..judge import Judge, utc
from ..model import PoolClass, PoolState, Unwrapped
from ..plans import Reconcile
from ..reconcile import run_pass
from ..rendering import Answer, Description, Status
from ..reports import PassReport, PoolReport
from ..reports import totals as count

__all__ = ["MAX_ACTION_LINES", "MAX_POOLS_LISTED", "RunPass", "render_pass"]

MAX_POOLS_LISTED = 500  # pool entries in a pass's answer: those acted on first; the rest counted
MAX_ACTION_LINES = 200  # reconcile-action log lines per pass; the summary counts the rest


def _pool_entry(report: PoolReport) -> dict[str, Any]:
    """One pool of a pass: its class and counts and, for a pool that needs a sync, what was done and why."""
    pool, decision = report.pool, report.decision
    entry: dict[str, Any] = {"nodepool_id": pool.pool_id, "name": pool.name, "class": decision.kind.value}
    if pool.nodes is not None:
        entry["nodes"] = pool.nodes
    if decision.kind in (PoolClass.SYNCING, PoolClass.STUCK) and pool.jobid:
        entry["jobid"] = pool.jobid
    if decision.since is not None:
        entry["since"] = utc(decision.since)
    if decision.action is None:
        return entry
    entry["action"] = decision.action.value
    if decision.action is Action.STARTED:
        entry["jobid"] = report.jobid or None
    elif decision.action is Action.BACKING_OFF:
        entry.update(jobid=decision.jobid, reason=decision.reason)
        entry.update({"until": utc(decision.until)} if decision.until is not None else {})
    elif decision.action is Action.DEFERRED:
        entry["reason"] = decision.reason
        entry.update({"next_window": utc(decision.next_window)} if decision.next_window is not None else {})
    if report.error is not None:
        entry.update(error_code=report.error.code, error_msg=report.error.message)
    if decision.note:
        entry["note"] = decision.note
    return entry


def _about(cluster_id: str, pool: PoolState) -> dict[str, Any]:
    return {"cluster_id": cluster_id, "nodepool_id": pool.pool_id, "name": pool.name}


def _job_of(decision: Decision) -> dict[str, Any]:
    return {"jobid": decision.jobid or None, "reason": decision.failure}


def _clusters(report: PassReport) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """Each cluster's entry, the action log lines, how many pools were acted on and how many are not listed.
    Both stay bounded whatever CCE lists: at most MAX_POOLS_LISTED pools (those acted on first), the others
    counted; at most MAX_ACTION_LINES lines."""
    entries = [[_pool_entry(pool) for pool in cluster.pools] for cluster in report.clusters]
    acted = [(i, j) for i, pools in enumerate(entries) for j, entry in enumerate(pools) if "action" in entry]
    rest = [(i, j) for i, pools in enumerate(entries) for j, entry in enumerate(pools) if "action" not in entry]
    listed = set((acted + rest)[:MAX_POOLS_LISTED])
    clusters: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for i, cluster in enumerate(report.clusters):
        if cluster.error is not None:
            status = Action.REFUSED if isinstance(cluster.error, TargetNotAllowed) else Action.FAILED
            body = {"error_code": cluster.error.code, "error_msg": cluster.error.message}
            clusters.append({"cluster_id": cluster.cluster_id, "status": status.value, **body})
            continue
        for pool in entries[i]:
            if "action" in pool and len(lines) < MAX_ACTION_LINES:
                lines.append({"message": "reconcile-action", "cluster_id": cluster.cluster_id, **pool})
        shown = [entry for j, entry in enumerate(entries[i]) if (i, j) in listed]
        one = {"cluster_id": cluster.cluster_id, "status": "read", "pools": shown}
        clusters.append(
            {**one, **({"pools_omitted": len(entries[i]) - len(shown)} if len(shown) < len(entries[i]) else {})}
        )
    return clusters, lines, len(acted), len(acted) + len(rest) - len(listed)


def render_pass(report: PassReport) -> Answer:
    """The pass in one document (per cluster, per pool, totals), 207 when something failed or was refused; and a
    log line per action with one summary line."""
    totals = count(report)
    clusters, lines, acted, omitted = _clusters(report)
    plan_of = report.schedule
    halted = plan_of is not None and plan_of.halted
    body: dict[str, Any] = {
        **({"region": report.region} if report.region else {}),
        "project_id": report.project_id,
        **({"dry_run": True} if report.dry_run else {}),
        "totals": totals,
        **({"pools_omitted": omitted} if omitted else {}),
        "clusters": clusters,
        **({"not_found": list(report.not_found)} if report.not_found else {}),
    }
    if plan_of is not None and plan_of.open_wave is not None:
        held_by = [_about(c.cluster_id, c.pool) | {"class": c.decision.kind.value} for c in plan_of.held_by]
        body["waves"] = {"open": plan_of.open_wave, "held_by": held_by}
    if plan_of is not None and plan_of.halted:
        body["halt"] = {"failed": [_about(c.cluster_id, c.pool) | _job_of(c.decision) for c in plan_of.failed]}
    if report.notification is not None:
        note = report.notification
        body["notification"] = {"published": note.published, "items": note.items}
        body["notification"].update(
            {"message_id": note.message_id or None} if note.published else {"error": note.error}
        )
    if report.metrics is not None:
        body["metrics"] = report.metrics.answer()
    unlogged = acted - min(acted, MAX_ACTION_LINES)
    summary: dict[str, Any] = {"message": "reconcile-pass", **({"region": report.region} if report.region else {})}
    summary.update(project_id=report.project_id, **totals, duration_ms=report.duration_ms)
    summary.update(concurrency=report.concurrency, throttled=report.throttled)
    lines.append({**summary, **({"actions_not_logged": unlogged} if unlogged else {})})
    troubled = totals["clusters_unread"] or totals[Action.FAILED.value] or totals[Action.REFUSED.value]
    status = Status.HALTED if halted else Status.RECONCILED
    return Answer(status, body, 207 if troubled else 200, tuple(lines), totals=totals)


def run(plan: Reconcile, cloud: Cloud, judge: Judge) -> PassReport:
    """The pass, as reconcile.run_pass runs it."""
    return run_pass(plan, cloud, judge.settings, judge.clock)


class RunPass(NamedTuple):
    """A reconcile pass of the function's own project: the configured one, or a reconcile document's."""

    plan: Reconcile

    @property
    def target(self) -> None:
        return None

    @property
    def region(self) -> str:
        return ""

    def perform(self, cloud: Cloud, judge: Judge) -> Answer:
        return render_pass(run(self.plan, cloud, judge))

    def describe(self, unwrapped: Unwrapped, judge: Judge) -> Description:
        plan = self.plan
        where = "every cluster" if plan.every_cluster else f"{len(plan.cluster_ids)} cluster(s)"
        applied = ("spec from CCE_SYNC_SPEC",) if "spec" not in unwrapped.document else ()
        return Description(True, f"reconcile pass over {where}", defaults=applied)
