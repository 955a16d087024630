"""The table of request kinds: `Intent`, one line per kind. Adding a kind is one module and one line here; mypy
checks that every member is a `Kind` (base.kind_of), so a kind that misses a method, or whose method drifts from
the protocol, fails `make lint`. The function imports this table for type checking only: at run time each kind's
module is imported when a request of that kind comes (intents.py), so a single sync loads no pass machinery.
"""

from .change import ReactToChange
from .fanout import Coordinate
from .fleet import SyncFleet
from .ignore import Ignore
from .passes import RunPass
from .refuse import Refuse
from .single import SyncOne
from .status import AskStatus
from .worker import Work

__all__ = [
    "AskStatus",
    "Coordinate",
    "Ignore",
    "Intent",
    "ReactToChange",
    "Refuse",
    "RunPass",
    "SyncFleet",
    "SyncOne",
    "Work",
]

Intent = (
    SyncOne  # kinds/single.py: sync one node pool
    | AskStatus  # kinds/status.py: how is a pool's sync going
    | SyncFleet  # kinds/fleet.py: a fleet document's targets
    | RunPass  # kinds/passes.py: a reconcile pass of the function's own project
    | Work  # kinds/worker.py: a fanned-out pass's worker, for its scope
    | ReactToChange  # kinds/change.py: a CCE change event, judged against the configured pass
    | Coordinate  # kinds/fanout.py: a pass over SYNC_SCOPES, one worker per scope
    | Ignore  # kinds/ignore.py: nothing to do, and why
    | Refuse  # kinds/refuse.py: cannot be done as it is
)
