"""The table of request kinds. Each kind is one module: its intent (a frozen value that `intents.interpret`
makes without I/O), its executor, its typed report, its renderer to an `Answer` and its `validate` description.

`Intent` below is the table: adding a kind is one module and one line. mypy checks that every member is a
`Kind` (`kind_of`), so a kind that misses a method, or a method that drifts from the protocol, fails `make lint`.
Only the modules of what arrives are imported at run time: fleets, passes and change events import their
machinery when one comes (handler/lazy.py lists where).
"""

from .base import Kind
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
    "Kind",
    "ReactToChange",
    "Refuse",
    "RunPass",
    "SyncFleet",
    "SyncOne",
    "Work",
    "kind_of",
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


def kind_of(intent: Intent) -> Kind:
    """The intent as a Kind: the one dispatch (what mypy checks for every member of the table)."""
    return intent
