"""The emulator's HTTP server: a threaded server on loopback whose handler receives and records each request,
applies an injected fault, and answers with what routes.py says."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from handler.endpoints import REGION_PATTERN

from .records import Recorded
from .routes import route

if TYPE_CHECKING:
    from .core import Emulator

__all__ = ["Handler", "Server"]

_REGION_PREFIX = re.compile(rf"^/({REGION_PATTERN})(/(?:api|v2|v3|V1\.0)/.*)$")


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # many concurrent clients: the concurrency tests, the fleet bench (20 workers x 8)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up first (a timeout the test set, a dropped connection) is not the server's error."""
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """HTTP as the services speak it, and the injected faults; what each route answers is routes.py's."""

    emulator: Emulator
    protocol_version = "HTTP/1.1"
    # One write per answer and no Nagle delay: otherwise delayed ACKs add ~40 ms to every exchange.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        if self.recorded is not None:
            self.recorded.status = status
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        # Two lengths that disagree: urllib3 refuses the answer (InvalidHeader) once the request was sent.
        self.send_header("Content-Length", f"{len(data)}, {len(data) + 1}" if self.bad_length else str(len(data)))
        if self.drip_head:
            buffered: list[bytes] = vars(self)["_headers_buffer"]  # what send_header kept (http.server's own)
            head, vars(self)["_headers_buffer"] = b"".join([*buffered, b"\r\n"]), []
            if not self._drip(head, self.drip_head):
                return
        else:
            self.end_headers()
        if self.drip:
            self._drip(data, self.drip)
        else:
            self.wfile.write(data)

    def _drip(self, data: bytes, delay: float) -> bool:
        """Send `data` a byte at a time, `delay` seconds apart; False when the client gave up meanwhile."""
        try:
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                time.sleep(delay)
        except OSError:
            self.close_connection = True
            return False
        return True

    def _receive(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path, region = parts.path, ""
        if prefixed := _REGION_PREFIX.match(path):
            region, path = prefixed.groups()
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = Recorded(self.command, path, parts.query, headers, body, region=region, raw_path=parts.path)
        recorded.at, recorded.sim = time.time(), self.emulator.clock()
        with self.emulator.lock:
            self.emulator.requests.append(recorded)
        return recorded

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    drip = 0.0
    bad_length = False
    drip_head = 0.0
    recorded: Recorded | None = None

    def _dispatch(self) -> None:
        began = time.perf_counter()
        request = self.recorded = self._receive()
        try:
            self._paced(request)
        finally:
            said = self.emulator.log
            if said is not None:  # one line per request: method, path, status, milliseconds
                took = (time.perf_counter() - began) * 1000
                where = f"/{request.region}" if request.region else ""
                said(f"{request.method} {where}{request.path} -> {request.status or 'dropped'} {took:.1f} ms")

    def _paced(self, request: Recorded) -> None:
        if not request.is_cce:
            self._handle(request)
            return
        emulator = self.emulator
        with emulator.lock:
            emulator.in_flight += 1
            emulator.peak_in_flight = max(emulator.peak_in_flight, emulator.in_flight)
        try:
            if emulator.latency:
                time.sleep(emulator.latency)
            self._handle(request)
        finally:
            with emulator.lock:
                emulator.in_flight -= 1

    def _handle(self, request: Recorded) -> None:
        emulator = self.emulator
        fault = emulator.take_fault(request.method, request.path)
        self.drip = fault.drip if fault is not None else 0.0
        self.bad_length = fault is not None and fault.bad_length
        self.drip_head = fault.drip_head if fault is not None else 0.0
        request_id = request.request_id = uuid.uuid4().hex
        if fault is not None and fault.process_first:
            route(self.emulator, request, request_id)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.redirect_to:
            self._answer(fault.status or 307, {}, {"Location": fault.redirect_to, "X-Request-Id": request_id})
            return
        if fault is not None and fault.raw is not None:
            self._answer(fault.status or 200, raw=fault.raw, headers={"X-Request-Id": request_id})
            return
        if fault is not None and fault.malformed:
            self._answer(fault.status or 200, raw=b"<html>not json", headers={"X-Request-Id": request_id})
            return
        if fault is not None and fault.status is not None:
            body = (
                fault.body
                if fault.body is not None
                else {"errorCode": f"CCE.01{fault.status}000", "errorMessage": "injected fault"}
            )
            if fault.echo_token:
                token = request.headers.get("x-auth-token", "")
                body = {"errorCode": f"CCE.01{fault.status}000", "errorMessage": f"token {token} was not accepted"}
            self._answer(fault.status, body, {"X-Request-Id": request_id, **fault.headers})
            return
        self._answer(*route(self.emulator, request, request_id))
