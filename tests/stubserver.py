"""A base for the HTTP stand-ins of unit and component tests: one reply call, no logging."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers with :meth:`reply` and logs nothing."""

    def reply(self, status: int, body: bytes) -> None:
        """Send ``status`` with ``body`` (bytes) and its Content-Length."""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""
