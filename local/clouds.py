"""Which cloud a local command talks to: Huawei Cloud only with --cloud; otherwise an emulator on loopback, the
one `make emulator` keeps running (found through .emulator.json), the one --emulator names, or one of its own.

Without --cloud nothing leaves loopback, whatever the shell or --env-file holds: the emulator's endpoints and
credentials replace theirs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from handler.variables import credential_names, endpoint_names

from .emulator import Emulator
from .layout import DEMO_DOMAIN, DEMO_PASSWORD, DEMO_PROJECT, DEMO_USER, seed

__all__ = [
    "DISCOVERY",
    "JOB_SECONDS",
    "UsageError",
    "chosen_cloud",
    "discovery",
    "job_seconds",
    "point_at",
    "reset_running",
    "running",
    "serve_until_stopped",
    "start_emulator",
]

ROOT = Path(__file__).resolve().parent.parent
DISCOVERY = ROOT / ".emulator.json"  # written by `make emulator` while it runs (ignored by git)
JOB_SECONDS = (5.0, 20.0)  # how long `make emulator`'s sync jobs take, by default
CREDENTIALS = credential_names()  # every variable that says how the function authenticates
ENDPOINTS = endpoint_names()


class UsageError(Exception):
    """Something the user asked that cannot be done as asked: one line on stderr, exit code 2."""


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _loopback(url: str) -> bool:
    """An http(s) URL of a loopback host, as the function's own endpoint check reads one."""
    from handler.endpoints import loopback_host

    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and loopback_host(parts.hostname or "")


def discovery() -> Path | None:
    """Where the running emulator is written down: .emulator.json, another file (NODEPOOL_SYNC_DISCOVERY=PATH),
    or nowhere (NODEPOOL_SYNC_DISCOVERY=off: the project's tests use only emulators they start)."""
    chosen = os.environ.get("NODEPOOL_SYNC_DISCOVERY", "")
    return None if chosen == "off" else Path(chosen) if chosen else DISCOVERY


def running() -> str | None:
    """The URL of the emulator `make emulator` keeps running, if one answers."""
    found = discovery()
    if found is None or not found.exists():
        return None
    try:
        url = str(json.loads(found.read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _loopback(url) and alive(url) else None


def alive(url: str) -> bool:
    """Whether our emulator answers at url (its health route, within a second)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/_emulator/health", timeout=1) as answer:  # noqa: S310 - loopback only
            health = json.loads(answer.read())
            return isinstance(health, dict) and health.get("emulator") == "nodepool-sync"
    except (OSError, ValueError):
        return False


def point_at(environment: dict[str, str], url: str) -> None:
    """The emulator's endpoints, project and credentials in place of whatever the environment held."""
    for name in (*CREDENTIALS, *ENDPOINTS):
        environment.pop(name, None)
    environment.update(
        CCE_ENDPOINT=url,
        IAM_ENDPOINT=url,
        SMN_ENDPOINT=url,
        FGS_ENDPOINT=url,
        CES_ENDPOINT=url,
        HUAWEICLOUD_SDK_PROJECT_ID=DEMO_PROJECT,
        HUAWEICLOUD_IAM_USERNAME=DEMO_USER,
        HUAWEICLOUD_IAM_PASSWORD=DEMO_PASSWORD,
        HUAWEICLOUD_IAM_DOMAIN_NAME=DEMO_DOMAIN,
    )


def start_emulator(
    environment: dict[str, Any] | None, port: int = 0, jobs: tuple[float, float] | None = None
) -> Emulator:
    """An emulator on loopback holding the demo layout for the environment's cluster and pool, strict as CCE
    (unknown clusters, pools and jobs: 404); with no environment, a bare one (no layout, anything accepted)."""
    emulator = Emulator(port=port)
    if environment is not None:
        layout = dict(environment)  # as it is now: point_at is about to change the caller's

        def reset() -> None:
            emulator.clear()
            emulator.pools.clear()
            emulator.strict, emulator.job_seconds_range = True, jobs
            seed(emulator, layout)
            if emulator.log is not None:
                emulator.log("reset: the demo layout restored, every job ended")

        emulator.on_reset = reset
        reset()
    try:
        return emulator.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; choose another port") from None


@contextmanager
def chosen_cloud(environment: dict[str, str], cloud: bool, emulator_url: str | None) -> Iterator[str]:
    """Point the environment at the cloud the options choose, say which, and yield its name."""
    if cloud:
        region = environment.get("HUAWEICLOUD_SDK_REGION", "?")
        say(f"using Huawei Cloud (--cloud): region {region}; a sync resets nodes")
        yield "huaweicloud"
        return
    url = emulator_url or running()
    if url is not None:
        if not _loopback(url):
            raise UsageError(f"--emulator must be a loopback URL (http://127.0.0.1:PORT), not {url[:80]!r}")
        point_at(environment, url)
        say(f"using the local emulator at {url} (--cloud for Huawei Cloud)")
        _hand_environment(url, environment)
        yield url
        return
    emulator = start_emulator(environment)
    point_at(environment, emulator.url)
    say(f"using a local emulator of its own at {emulator.url}, with the demo layout (make emulator keeps one running)")
    try:
        yield emulator.url
    finally:
        emulator.stop()


def _hand_environment(url: str, environment: dict[str, str]) -> None:
    """Tell the running emulator the variables this invocation runs with: the workers it runs for a fanned-out
    pass get them, as FunctionGraph's workers get the function's (loopback only, the demo's credentials)."""
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - a loopback URL, checked above
        f"{url}/_emulator/environment", data=json.dumps(environment).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass
    except OSError:
        say("the emulator did not take the environment: a fanned-out pass's workers will not run")


def job_seconds(text: str) -> tuple[float, float]:
    """`--jobs 5-20` (a range of seconds) or `--jobs 3` (exactly): how long each sync job takes."""
    low, _, high = text.partition("-")
    try:
        bounds = float(low), float(high or low)
    except ValueError:
        raise UsageError(f"--jobs: {text[:40]!r} is not a number of seconds; expected MIN-MAX, e.g. 5-20") from None
    if not 0 <= bounds[0] <= bounds[1] <= 86400:
        raise UsageError(f"--jobs: {text[:40]!r} is out of range; expected MIN-MAX with 0 <= MIN <= MAX <= 86400")
    return bounds


def reset_running(url: str | None) -> str:
    """Restore the layout of the running emulator (or the one at `url`), ending its jobs; its URL."""
    import urllib.request

    url = url or running()
    if url is None:
        raise UsageError("no emulator is running here; start one with make emulator (or python -m local emulator)")
    if not _loopback(url):
        raise UsageError(f"--emulator must be a loopback URL (http://127.0.0.1:PORT), not {url[:80]!r}")
    request = urllib.request.Request(f"{url}/_emulator/reset", data=b"", method="POST")  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - loopback only
            answer.read()
    except OSError as exc:
        raise UsageError(f"the emulator at {url} did not reset: {exc}") from None
    return url


def serve_until_stopped(emulator: Emulator, discoverable: bool, facts: dict[str, Any] | None = None) -> None:
    """Keep the emulator up until Ctrl-C or SIGTERM; while it runs, .emulator.json tells the local tools where
    (and `facts`, what its banner says: the demo scopes, the demo AK/SK)."""
    import signal
    import time

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    found = discovery() if discoverable else None
    if found is not None:
        found.write_text(
            json.dumps({"url": emulator.url, "pid": os.getpid(), **(facts or {})}) + "\n", encoding="utf-8"
        )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if found is not None and _ours(found):
            found.unlink(missing_ok=True)
        emulator.stop()
        if emulator.log is not None:
            emulator.log("stopped")


def _ours(found: Path) -> bool:
    try:
        return bool(json.loads(found.read_text(encoding="utf-8")).get("pid") == os.getpid())
    except (OSError, ValueError, AttributeError):
        return False
