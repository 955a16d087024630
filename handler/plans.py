"""Fleet and reconcile documents: checked here, imported only when such a document comes (the single sync's
path never pays for them). Each target still becomes a sync request document, judged as a single sync is."""

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, NamedTuple

from .errors import DocumentInvalid, FieldError
from .model import tick_of
from .validation import (
    FLEET_SCHEMA,
    OVERRIDES,
    RECONCILE_SCHEMA,
    TARGET_SOURCES,
    Defaults,
    schema_defaults,
    schema_errors,
    spec_errors,
)

__all__ = ["Fleet", "Reconcile", "Selection", "plan_fleet", "plan_reconcile"]


class Selection(str, Enum):
    """How a fleet document chooses its node pools."""

    TARGETS = "targets"  # the document lists them
    NAMES = "names"  # the cluster's node pools with these names
    ALL = "all"  # every node pool of the cluster (DefaultPool only when asked)


class Fleet(NamedTuple):
    """A validated fleet document: the listed targets' documents, or a selection to resolve with CCE."""

    selection: Selection
    project_id: str
    cluster_id: str
    shared: dict[str, Any]
    documents: tuple[dict[str, Any], ...] = ()  # Selection.TARGETS
    names: tuple[str, ...] = ()  # Selection.NAMES
    include_default: bool = False  # Selection.ALL


class Reconcile(NamedTuple):
    """A validated reconcile pass: where to look, which pools, how gently, and the spec of every start."""

    project_id: str
    every_cluster: bool  # clusters: "all" (the project's cluster list)
    cluster_ids: tuple[str, ...]  # otherwise these
    pools: Selection  # ALL or NAMES
    names: tuple[str, ...]
    include_default: bool
    exclude: frozenset[str]
    max_syncing_per_cluster: int
    force: bool  # also pools without counts (unknown), and nothing more
    ignore_windows: bool
    ignore_backoff: bool
    spec: dict[str, Any]
    dry_run: bool
    concurrency: int  # CCE requests in flight at once
    scheduled: bool = False  # the timer's configured pass (or a worker of it): the one that tells a person
    closed_until: float | None = None  # SYNC_WINDOWS judged once, when the pass was asked for
    focus: str = ""  # a change event's pool, by ID or name: only it (empty: every chosen pool)
    region: str = ""  # a worker's scope's region ("": the function's own)
    pass_id: str = ""  # a fanned-out pass's ID (a worker's)
    waves: tuple[tuple[str, ...], ...] = ()  # clusters (IDs or names) wave by wave
    max_syncing: int | None = None  # the pass's budget of pools syncing at once, across its clusters
    halt_after_failures: int | None = None
    ignore_halt: bool = False
    ignore_waves: bool = False
    ignore_budget: bool = False
    # A narrowed pass (a change event): the configured pass's clusters, read as context for its guards.
    context_clusters: tuple[str, ...] = ()
    context_every: bool = False

    @property
    def tick(self) -> float | None:
        """A scheduled pass's tick, which its pass ID names: what is news to it is measured back from it."""
        return tick_of(self.pass_id) if self.scheduled else None


def _in_scope(entries: Iterable[str], project_id: str, foreign: bool) -> tuple[str, ...]:
    """A pass's entries (waves, exclude, names) for one scope: `<project_id>/<name>` is its project's only; an
    unqualified entry is the function's own scope's (so not a foreign worker's)."""
    own: list[str] = []
    for entry in entries:
        project, qualified, name = entry.rpartition("/")
        if qualified and project == project_id:
            own.append(name)
        elif not qualified and not foreign:
            own.append(entry)
    return tuple(own)


def plan_reconcile(
    document: Mapping[str, Any],
    overrides: Mapping[str, str],
    defaults: Defaults,
    starts: bool = True,
    foreign: bool = False,
) -> Reconcile:
    """Check a reconcile document; defaults fill the project, the clusters (CCE_CLUSTER_ID) and the spec. A plan
    that never `starts` (read only to judge the guards) needs no spec; a `foreign` one is a worker's for a scope
    other than the function's own (its entries are only those qualified with its project)."""
    if "nodepool_id" in overrides:
        raise DocumentInvalid([FieldError("", "this API path names one node pool: send a single sync document")])
    errors = schema_errors(RECONCILE_SCHEMA, document)
    options = document.get("reconcile")
    options = options if isinstance(options, dict) else {}
    selection = options.get("nodepools", {"all": True})
    if isinstance(selection, dict) and ("names" in selection) == bool(selection.get("all")):
        errors.append(FieldError("/reconcile/nodepools", "give either names or all: true"))
    clusters = options.get("clusters", [defaults.cluster_id] if defaults.cluster_id else [])
    if "cluster_id" in overrides:
        if "clusters" in options and options["clusters"] != [overrides["cluster_id"]]:
            errors.append(FieldError("/reconcile/clusters", "differs from the API path's cluster, which decides"))
        clusters = [overrides["cluster_id"]]
    if not clusters:
        errors.append(FieldError("/reconcile/clusters", "is required: set it or CCE_CLUSTER_ID"))
    project_id = overrides.get("project_id") or document.get("project_id") or defaults.project_id
    if not project_id:
        errors.append(FieldError("/project_id", f"is required: set it or {TARGET_SOURCES['project_id']}"))
    spec = document.get("spec", defaults.spec if starts else {})
    if spec is None:
        errors.append(FieldError("/spec", "is required: set it in the document or CCE_SYNC_SPEC"))
    elif isinstance(spec, dict) and not errors and starts:
        errors = spec_errors(dict(spec), defaults.node_login_password)
    if errors:
        raise DocumentInvalid(errors)
    assert isinstance(selection, dict) and isinstance(spec, Mapping)
    default = schema_defaults(RECONCILE_SCHEMA)
    return Reconcile(
        project_id=str(project_id),
        every_cluster=clusters == "all",
        cluster_ids=() if clusters == "all" else tuple(dict.fromkeys(clusters)),
        pools=Selection.ALL if selection.get("all") else Selection.NAMES,
        names=_in_scope(selection.get("names", ()), str(project_id), foreign),
        include_default=bool(selection.get("include_default")),
        exclude=frozenset(_in_scope(options.get("exclude", ()), str(project_id), foreign)),
        max_syncing_per_cluster=int(options.get("max_syncing_per_cluster", default["max_syncing_per_cluster"])),
        force=bool(options.get("force", False)),
        ignore_windows=bool(options.get("ignore_windows", False)),
        ignore_backoff=bool(options.get("ignore_backoff", False)),
        spec=dict(spec),
        dry_run=defaults.dry_run or bool(document.get("dry_run", False)),
        concurrency=int(options.get("concurrency", default["concurrency"])),
        pass_id=str(document.get("pass_id", "")),
        waves=tuple(_in_scope(wave, str(project_id), foreign) for wave in options.get("waves", ())),
        max_syncing=options.get("max_syncing"),
        halt_after_failures=options.get("halt_after_failures"),
        ignore_halt=bool(options.get("ignore_halt", False)),
        ignore_waves=bool(options.get("ignore_waves", False)),
        ignore_budget=bool(options.get("ignore_budget", False)),
    )


def plan_fleet(document: Mapping[str, Any], overrides: Mapping[str, str], defaults: Defaults) -> Fleet:
    """Check a fleet document's shape; each target is validated later as a document of its own.

    `overrides` (API Gateway path parameters) win here as for a single document: a target naming another
    project or cluster is a conflict, and a path that names one node pool cannot carry a fleet."""
    if "nodepool_id" in overrides:
        raise DocumentInvalid(
            [FieldError("", "this API path names one node pool: send a single sync document, not targets or nodepools")]
        )
    merged = {**document, **overrides}
    errors = schema_errors(FLEET_SCHEMA, merged)
    if "targets" in merged and "nodepools" in merged:
        errors.append(FieldError("/nodepools", "give either targets or nodepools, not both"))
    selection = merged.get("nodepools")
    if isinstance(selection, dict) and ("names" in selection) == bool(selection.get("all")):
        errors.append(FieldError("/nodepools", "give either names or all: true"))
    project_id = merged.get("project_id") or defaults.project_id
    cluster_id = merged.get("cluster_id") or defaults.cluster_id
    if "nodepools" in merged and not cluster_id:
        errors.append(FieldError("/cluster_id", "is required to select node pools: set it or CCE_CLUSTER_ID"))
    targets = merged.get("targets", [])
    for index, target in enumerate(targets if isinstance(targets, list) else ()):
        for key, value in overrides.items():
            if isinstance(target, dict) and target.get(key, value) != value:
                errors.append(FieldError(f"/targets/{index}/{key}", "differs from the API path's, which decides"))
    if not errors and isinstance(merged.get("spec"), dict):
        errors = spec_errors(merged["spec"], defaults.node_login_password)
    if errors:
        raise DocumentInvalid(errors)
    shared: dict[str, Any] = {key: merged[key] for key in ("spec", "dry_run", "wait", *OVERRIDES) if key in merged}
    if "targets" in merged:
        ids = {"project_id": project_id} if project_id else {}
        ids.update({"cluster_id": cluster_id} if cluster_id else {})
        documents = tuple({**shared, **ids, **target, **overrides} for target in targets)
        return Fleet(Selection.TARGETS, project_id, cluster_id, shared, documents=documents)
    assert isinstance(selection, dict)  # a fleet document without targets has nodepools, an object
    if selection.get("all"):
        include_default = bool(selection.get("include_default"))
        return Fleet(Selection.ALL, project_id, cluster_id, shared, include_default=include_default)
    return Fleet(Selection.NAMES, project_id, cluster_id, shared, names=tuple(selection["names"]))
