"""A local cloud: CCE, IAM, SMN and FunctionGraph's asynchronous invocation, emulated behind one real threaded
HTTP server on loopback, for tests, `make run` and the CLI.

One module per service (iam.py, cce.py; SMN and FunctionGraph are routes of routes.py), the state and its
lifecycle (core.py), the HTTP plumbing and injected faults (server.py). Every request is recorded; faults can be
injected for the next N matching requests.
"""

from ..events import cloud_event, cts_trace
from .core import Emulator
from .iam import verify_signature
from .records import Fault, Job, Recorded, go_time

__all__ = ["Emulator", "Fault", "Job", "Recorded", "cloud_event", "cts_trace", "go_time", "verify_signature"]
