"""`python -m local serve`'s API Gateway: HTTP requests on loopback become API Gateway events for the function,
its answers HTTP responses again."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import events
from . import template as templates
from .clouds import UsageError, alive, say

__all__ = ["make_gateway", "saying_when_gone"]


class _GatewayHandler(BaseHTTPRequestHandler):
    """Turns HTTP requests into API Gateway events and the function's answers back into HTTP responses."""

    template: dict[str, Any]
    invoke: Callable[[Any], tuple[Any, bool]]
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle delay: otherwise delayed ACKs add ~40 ms to every exchange.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} - {format % args}", file=sys.stderr, flush=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        match = templates.route_pattern(self.template).match(parts.path)
        if match is None:
            route = self.template["triggers"]["apig"]["path"]
            self._send(404, {"Content-Type": "application/json"}, json.dumps({"error_msg": f"no route; use {route}"}))
            return
        event = events.apig_event(
            self.template,
            body,
            match.groupdict(),
            method=self.command,
            headers=dict(self.headers.items()),
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
        )
        answer, _ = type(self).invoke(event)
        if not isinstance(answer, dict) or "statusCode" not in answer:
            self._send(500, {"Content-Type": "application/json"}, json.dumps(answer))
            return
        payload = answer.get("body", "")
        data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode()
        self._send(int(answer["statusCode"]), answer.get("headers", {}), data)

    def _send(self, status: int, headers: Mapping[str, str], body: str | bytes) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815 - http.server's names


def make_gateway(
    template: dict[str, Any], invoke: Callable[[Any], tuple[Any, bool]], host: str, port: int
) -> ThreadingHTTPServer:
    """An HTTP server on (host, port) that plays API Gateway in front of the function (`invoke` an event)."""

    class Handler(_GatewayHandler):
        pass

    Handler.template, Handler.invoke = template, staticmethod(invoke)
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another port (make serve PORT=3001)"
        ) from None
    server.daemon_threads = True
    return server


def saying_when_gone(invoke: Callable[[Any], tuple[Any, bool]], url: str) -> Callable[[Any], tuple[Any, bool]]:
    """An invoke that, when the function fails because the emulator behind it has gone, says so (on stderr and
    as a 503) instead of passing on the function's 502 about an unreachable CCE."""

    def checked(event: Any) -> tuple[Any, bool]:
        answer, ok = invoke(event)
        failed = isinstance(answer, dict) and int(answer.get("statusCode", 200)) >= 500
        if not failed or alive(url):
            return answer, ok
        message = f"the local emulator at {url} is not answering (stopped?); start it again with: make emulator"
        say(message)
        body = json.dumps({"error_msg": message})
        return {"statusCode": 503, "headers": {"Content-Type": "application/json"}, "body": body}, False

    return checked
