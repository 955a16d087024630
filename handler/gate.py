"""The gate: the one place that decides whether a sync may start, and the only issuer of the `Admission` that
`cloud.Cloud.start` (the one call that POSTs a sync) requires, so no path can start a sync it did not admit.

    window_holds(closed_until, lifts)         the windows, for an operator's request (judged when interpreted)
    hold(decision, policy) -> Decision        one pool's own guards in a pass: the windows, doubt, the backoff
    schedule(candidates, rules, ...)          the pass-wide guards over every pool: halt, waves, budgets
    Schedule.admissions                       leave to start, for what the guards let through
    explicit_rules(options, lifts), admit()   an operator's request (a single sync, a fleet's target) judged by
                                              the configured pass's halt, waves and budget, on a View of it

Its decisions are values, tested as tables without HTTP (tests/test_decide.py, tests/test_gate.py).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import BudgetReached, Halted, Held, WaveClosed
from .model import PoolClass, PoolState, Target

if TYPE_CHECKING:  # the decisions' types: a single sync that no fleet guard holds never imports them
    from .decide import Candidate, Decision, Guard, Policy

__all__ = [
    "Admission",
    "Rules",
    "Schedule",
    "View",
    "admit",
    "assess",
    "explicit_rules",
    "held",
    "hold",
    "schedule",
    "window_holds",
]


class _Key:
    """What only this module holds: an Admission is made with it, so no other module can make one."""


_KEY = _Key()


class Admission:
    """Leave to start one sync of one node pool, given by the gate."""

    __slots__ = ("target",)

    def __init__(self, target: Target, key: _Key) -> None:
        if key is not _KEY:
            raise TypeError("only the gate admits a sync")
        self.target = target

    def __repr__(self) -> str:
        return f"Admission({self.target!r})"


def window_holds(closed_until: float | None, lifts: frozenset[str]) -> bool:
    """Whether the windows hold an operator's request: none is open now and it does not lift them (force or
    ignore_windows)."""
    return closed_until is not None and "ignore_windows" not in lifts


def hold(decision: "Decision", policy: "Policy") -> "Decision":
    """One pool's own guards, for a pool that would start: outside every window it waits (ignore_windows lifts
    it); a latest job that could not be read holds it (doubt holds); a recent failure backs it off
    (ignore_backoff lifts it)."""
    from .decide import Action, Guard

    if decision.action is not Action.STARTED:
        return decision
    if policy.closed_until is not None and not policy.ignore_windows:
        window = Guard.WINDOW
        return decision._replace(
            action=Action.DEFERRED, reason="outside_window", next_window=policy.closed_until, guard=window
        )
    if decision.unread:
        return decision._replace(
            action=Action.DEFERRED, reason="its latest job could not be read", note=decision.unread, guard=Guard.DOUBT
        )
    if decision.failed and not policy.ignore_backoff:
        if decision.until is None:
            return decision._replace(
                action=Action.BACKING_OFF,
                guard=Guard.BACKOFF,
                reason=decision.failure,
                note="the failed job's time cannot be read: not started again until it can (ignore_backoff overrides)",
            )
        return decision._replace(action=Action.BACKING_OFF, reason=decision.failure, guard=Guard.BACKOFF)
    return decision


class Rules(NamedTuple):
    """The pass-wide guards over the pools' own decisions, as the pass (its document, or SYNC_RECONCILE) sets
    them, with the overrides that lift them."""

    max_syncing_per_cluster: int  # the plan's (its default is the reconcile schema's)
    dry_run: bool = False
    max_syncing: int | None = None  # the budget across every cluster of the pass
    halt_after_failures: int | None = None
    ignore_halt: bool = False
    waves: int = 0  # how many waves the pass names (0: none)
    ignore_waves: bool = False
    ignore_budget: bool = False
    explicit: bool = False  # an operator's request (a single sync, a fleet's target): no per-cluster limit


class Schedule(NamedTuple):
    """Every candidate's final decision and, for each that may start, its admission, in the candidates' order;
    and why the pass held back what it did."""

    decisions: "list[Decision]"
    open_wave: int | None = None  # with waves: the last wave that may start
    held_by: "tuple[Candidate, ...]" = ()  # the pools that keep the next wave closed
    failed: "tuple[Candidate, ...]" = ()  # with halt_after_failures: the pools whose latest syncs failed
    halted: bool = False
    admissions: tuple[Admission | None, ...] = ()


def _refusal(candidate: "Candidate", rules: Rules, state: "_State") -> "tuple[Guard, str] | None":
    """The first pass-wide guard that holds the candidate back, and why; None when none does. A cluster that
    could not be read is doubt, and doubt holds: it keeps its later waves closed and every start under a
    budget waiting."""
    from .decide import Guard

    if state.halted:
        return Guard.HALT, f"halted: {len(state.failed)} pools' latest syncs failed within SYNC_FAILED_BACKOFF_SECONDS"
    if rules.waves and not rules.ignore_waves:
        if state.open_wave is not None and candidate.wave > state.open_wave:
            return Guard.WAVE, f"wave {candidate.wave} waits for wave {state.open_wave}"
        unread = [cluster for cluster, wave in state.unread if wave < candidate.wave]
        if unread:
            return Guard.WAVE, f"wave {candidate.wave} waits: cluster {unread[0]} of an earlier wave could not be read"
    if not rules.explicit and state.syncing.get(candidate.cluster_id, 0) >= rules.max_syncing_per_cluster:
        return Guard.CLUSTER, "max_syncing_per_cluster reached"
    if rules.max_syncing is not None and not rules.ignore_budget:
        if state.in_pass >= rules.max_syncing:
            return Guard.BUDGET, "max_syncing reached"
        if state.unread:
            return Guard.BUDGET, f"max_syncing cannot be judged: cluster {state.unread[0][0]} could not be read"
    return None


class _State:
    """What the pass-wide guards count while they go: the halt, the open wave, the pools syncing."""

    def __init__(
        self, failed: "tuple[Candidate, ...]", halted: bool, open_wave: int | None, unread: Sequence[tuple[str, int]]
    ) -> None:
        self.failed, self.halted, self.open_wave, self.unread = failed, halted, open_wave, tuple(unread)
        self.syncing: dict[str, int] = {}
        self.in_pass = 0

    def occupy(self, cluster_id: str) -> None:
        self.syncing[cluster_id] = self.syncing.get(cluster_id, 0) + 1
        self.in_pass += 1


def schedule(
    candidates: "Sequence[Candidate]",
    rules: Rules,
    others: "Iterable[Candidate]" = (),
    context: "Iterable[Candidate]" = (),
    project_id: str = "",
    unread: Sequence[tuple[str, int]] = (),
) -> Schedule:
    """The pass-wide guards, in this order: the halt (enough recent failures: nothing starts), the waves (a
    pool of wave k+1 starts only while no pool of the earlier waves holds it), then the budgets: a pool starts
    while its cluster has room (max_syncing_per_cluster, not for explicit requests) and the pass has room
    (max_syncing). Pools already syncing count, and so do `others` (pools of the pass's clusters it does not
    take) and `context` (pools of the configured pass's other clusters a narrowed pass reads only to judge: their
    failures count toward the halt, their pools toward the waves and the budget). A dry run says WOULD_START.
    Each start gets its Admission (for `project_id`). `unread`: the (cluster, wave) whose pools could not be
    read. A drifted pool whose latest job could not be read counts toward the halt as a possible failure."""
    from .decide import Action

    context = tuple(context)
    failed = tuple(
        c
        for c in (*candidates, *context)
        if c.decision.failed or (c.decision.unread and c.decision.kind is PoolClass.DRIFTED)
    )
    threshold = rules.halt_after_failures
    halted = threshold is not None and len(failed) >= threshold and not rules.ignore_halt
    holding = [c for c in (*candidates, *context) if c.decision.holds_later_waves]
    open_wave = min((c.wave for c in holding), default=rules.waves + 1) if rules.waves else None
    held_by = tuple(c for c in holding if c.wave == open_wave) if rules.waves else ()
    state = _State(failed, halted, open_wave, unread)
    for candidate in (*candidates, *others, *context):
        if candidate.decision.occupies and not candidate.decision.starts:
            state.occupy(candidate.cluster_id)
    final: dict[int, Decision] = {}
    for index in sorted(range(len(candidates)), key=lambda i: candidates[i].wave):  # earlier waves first
        candidate = candidates[index]
        decision = candidate.decision
        if decision.action is Action.STARTED:
            refused = _refusal(candidate, rules, state)
            if refused is not None:
                decision = decision._replace(action=Action.DEFERRED, reason=refused[1], guard=refused[0])
            else:
                state.occupy(candidate.cluster_id)
                if rules.dry_run:
                    decision = decision._replace(action=Action.WOULD_START)
        final[index] = decision
    decisions = [final[i] for i in range(len(candidates))]
    admissions = tuple(
        Admission(Target(project_id, c.cluster_id, c.pool.pool_id), _KEY) if d.action is Action.STARTED else None
        for c, d in zip(candidates, decisions, strict=True)
    )
    return Schedule(decisions, open_wave, held_by, failed if threshold is not None else (), halted, admissions)


class View(NamedTuple):
    """The configured pass in a request's scope, as read to judge a start (nothing started): every pool's own
    decision, each cluster's wave, and the clusters whose pools could not be read (doubt)."""

    candidates: "tuple[Candidate, ...]"
    waves: Mapping[str, int]  # cluster ID -> its wave
    last_wave: int  # the wave of a cluster no wave names
    unread: tuple[tuple[str, int], ...] = ()

    def candidate(self, target: Target) -> "Candidate | None":
        """The target's pool as the view read and judged it; None when the view does not take it."""
        return next(
            (c for c in self.candidates if (c.cluster_id, c.pool.pool_id) == (target.cluster_id, target.nodepool_id)),
            None,
        )


def explicit_rules(options: Mapping[str, Any] | None, lifts: frozenset[str]) -> Rules | None:
    """The configured pass's guards an operator's request meets (a single sync, a fleet's target): the halt,
    the waves and the budget as SYNC_RECONCILE sets them, less those lifted by the request's overrides or the
    configuration's own; None when none holds (then no fleet needs reading)."""
    options = options or {}

    def lifted(name: str) -> bool:
        return name in lifts or options.get(name) is True

    halt = None if lifted("ignore_halt") else options.get("halt_after_failures")
    waves = 0 if lifted("ignore_waves") else len(options.get("waves", ()))
    budget = None if lifted("ignore_budget") else options.get("max_syncing")
    if halt is None and not waves and budget is None:
        return None
    return Rules(1, max_syncing=budget, halt_after_failures=halt, waves=waves, explicit=True)


def admit(
    target: Target, rules: Rules | None, view: View | None = None, admitted: Sequence[Target] = ()
) -> "Admission | Decision":
    """An operator's request to start `target`: its Admission, or the decision that holds it (its `guard` and
    `reason`). `admitted`: what this invocation started already (they count toward the budget)."""
    if rules is None or view is None:
        return Admission(target, _KEY)
    planned = assess(target, rules, view, admitted)
    return planned.admissions[0] or planned.decisions[0]


def assess(target: Target, rules: Rules, view: View, admitted: Sequence[Target] = ()) -> Schedule:
    """The pass-wide guards over a start of `target` on the view (what admit decides, and why: the halt and its
    failures, the open wave and what holds the next), for the start or for the status route's question."""
    from .decide import Action, Candidate, Decision

    own = [c for c in (view.candidate(target),) if c is not None]
    pool = own[0].pool if own else PoolState(target.nodepool_id, target.nodepool_id, False, "", None, None)
    wave = view.waves.get(target.cluster_id, view.last_wave)
    failed = bool(own) and own[0].decision.failed  # its own recent failure counts toward the halt too
    candidate = Candidate(target.cluster_id, pool, Decision(PoolClass.DRIFTED, Action.STARTED, failed=failed), wave)
    started = Decision(PoolClass.SYNCING)
    context = [c for c in view.candidates if c not in own]
    context += [Candidate(t.cluster_id, PoolState(t.nodepool_id, "", True, "", None, None), started) for t in admitted]
    return schedule([candidate], rules, (), context, target.project_id, view.unread)


def held(decision: "Decision") -> Held:
    """What an operator's request is answered when a guard holds it: the guard's error, its reason the message."""
    from .decide import Guard

    kinds: dict[Guard, type[Held]] = {Guard.HALT: Halted, Guard.WAVE: WaveClosed, Guard.BUDGET: BudgetReached}
    return kinds.get(decision.guard or Guard.BUDGET, Held)(f"deferred: {decision.reason}")
