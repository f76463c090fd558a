"""Serve a simulator on a real socket: `with serve(simulator) as base_url: ...`.

A `ThreadingHTTPServer` in a daemon thread on a free port, HTTP/1.1 keep-alive, headers and
body written in one send with TCP_NODELAY on every accepted socket (otherwise Nagle's
algorithm and delayed ACKs add ~40 ms to each keep-alive call: DESIGN.md section 10).
The simulator's `handle(method, path, headers, body)` answers; `DropConnection` closes the
socket without a word. Pass `ssl_context` for HTTPS (the TLS tests).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.magento import DropConnection

MAX_BODY_BYTES = 64 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    simulator: Any
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            # The handshake happens on the first read, in the handler's thread: a client that
            # never completes it cannot stall the accept loop.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts, refused certificates) are part of the tests: quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"Content-Type": "text/plain"}, b"Request Entity Too Large")
            return
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, answer = self.server.simulator.handle(
                self.command, self.path, dict(self.headers.items()), body
            )
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(status, headers, answer)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


@contextmanager
def serve(
    simulator: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> Iterator[str]:
    """Run `simulator` behind HTTP(S) until the block ends; yields the base URL."""
    server = _Server((host, port), _Handler)
    server.simulator = simulator
    server.ssl_context = ssl_context
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    scheme = "https" if ssl_context is not None else "http"
    bound_host, bound_port = server.server_address[:2]
    try:
        yield f"{scheme}://{bound_host}:{bound_port}"
    finally:
        release = getattr(simulator, "release_waiters", None)
        if release is not None:
            release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
