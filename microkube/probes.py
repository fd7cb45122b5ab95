"""Cheap readiness probes built on the standard library.

``requests`` would cost ~100 ms of import time in ``microkube status``;
these probes need only a socket and ssl, and ssl is imported by the probes that
use it, so a plain socket probe (``microkube kubectl``'s check) costs no TLS.
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False  # typing and json cost ~10 ms of `microkube kubectl`'s socket check
if TYPE_CHECKING:
    import ssl
    from pathlib import Path
    from typing import Any


def unix_socket_accepts(path: Path, timeout: float = 0.5) -> bool:
    """True if the unix socket at ``path`` accepts a connection within ``timeout`` s."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host``:``port`` is accepted within ``timeout`` s
    (``host``: an address or a name, each of its addresses tried in turn)."""
    try:
        # typeshed says str; the address goes to getaddrinfo, which takes bytes too.
        with socket.create_connection((wire_name(host), port),  # type: ignore[arg-type]
                                      timeout=timeout):
            return True
    except OSError:
        return False


def wire_name(host: str) -> bytes:
    """``host`` as bytes for getaddrinfo and TLS's server name: a str there loads the idna
    codec (with stringprep and unicodedata, ~2 ms) even for an address; a non-ASCII
    name is IDNA-encoded, as the str would be."""
    return host.encode("ascii") if host.isascii() else host.encode("idna")


def tls_context(ca: Path | None = None, cert: Path | None = None,
                key: Path | None = None) -> ssl.SSLContext:
    """A client context; without a CA it checks nothing (loopback self-signed health ports)."""
    import ssl

    if ca is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


def http_get(url: str, *, context: ssl.SSLContext | None = None,
             timeout: float = 1.0) -> tuple[int, bytes]:
    """GET ``url``; (0, b"") when nothing answers."""
    return http_request("GET", url, context=context, timeout=timeout)


def http_request(method: str, url: str, *, context: ssl.SSLContext | None = None,
                 timeout: float = 1.0) -> tuple[int, bytes]:
    """``method`` (without a body) on ``url``: the status and body; (0, b"") when nothing
    answers or the answer is not HTTP (see :func:`http_exchange`)."""
    try:
        return http_exchange(method, url, context=context, timeout=timeout)
    except (OSError, ValueError):
        return 0, b""


def http_exchange(method: str, url: str, body: bytes = b"", *, content_type: str = "",
                  context: ssl.SSLContext | None = None,
                  timeout: float = 1.0) -> tuple[int, bytes]:
    """``method`` on ``url`` (``http://`` or ``https://`` host:port/path) with ``body``:
    the status and the answer's body.

    One request on its own connection through the standard library's http.client,
    imported here so a process that never probes over HTTP does not load it (with the
    email package it costs ~3 MB). ``timeout`` (s) bounds each connect, send and receive.
    Raises OSError (ssl.SSLError included) when the exchange fails, ValueError when the
    answer is not HTTP.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = HttpConnection(f"{parts.scheme}://{parts.netloc}", context=context, timeout=timeout)
    try:
        return conn.exchange(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                             body, content_type=content_type)
    finally:
        conn.close()


class HttpConnection:
    """Requests to one server (``base``: "https://host:port" or "http://host:port") over one
    connection kept open between them (HTTP/1.1 keep-alive), so a second request costs no
    new TLS handshake. The standard library's http.client, imported here; ``timeout`` (s)
    bounds each connect, send and receive. Close it with :meth:`close`.
    """

    def __init__(self, base: str, *, context: ssl.SSLContext | None = None,
                 timeout: float = 1.0) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        host, port = parts.hostname or "", parts.port
        self.base = base
        self._conn: http.client.HTTPConnection = (
            http.client.HTTPSConnection(host, port, timeout=timeout,
                                        context=context or tls_context())
            if parts.scheme == "https" else http.client.HTTPConnection(host, port, timeout=timeout))
        self._used = False

    def exchange(self, method: str, path: str, body: bytes = b"", *,
                 content_type: str = "") -> tuple[int, bytes]:
        """``method`` on ``path`` (with its query) with ``body``: the status and the answer's
        body. A kept connection the server has closed meanwhile is opened again, once.
        Raises OSError (ssl.SSLError included) when the exchange fails, ValueError when the
        answer is not HTTP."""
        import http.client

        headers = {"Accept": "application/json, */*", "User-Agent": "microkube"}
        if content_type:
            headers["Content-Type"] = content_type
        for retry in (self._used, False):
            try:
                self._conn.request(method, path,
                                   body=body if body or method in ("POST", "PUT", "PATCH") else None,
                                   headers=headers)
                resp = self._conn.getresponse()
                self._used = True
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()
                if not retry:
                    raise
            except http.client.HTTPException as e:
                self._conn.close()
                raise ValueError(f"{self.base}{path}: the answer is not HTTP "
                                 f"({type(e).__name__})") from None
            except OSError:
                self._conn.close()
                raise
        raise AssertionError("unreachable")  # the second try returns or raises

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        """``method`` (without a body) on ``path``: the status and body; (0, b"") when
        nothing answers or the answer is not HTTP."""
        try:
            return self.exchange(method, path)
        except (OSError, ValueError):
            return 0, b""

    def close(self) -> None:
        self._conn.close()


def http_ok(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 1.0) -> bool:
    return http_get(url, context=context, timeout=timeout)[0] == 200


def http_json(url: str, *, context: ssl.SSLContext | None = None,
              timeout: float = 1.0) -> Any:
    """The decoded JSON at ``url``; None unless it answers 200 with JSON."""
    return json_of(*http_get(url, context=context, timeout=timeout))


def json_of(status: int, body: bytes) -> Any:
    """``body`` decoded as JSON when ``status`` is 200; else, or when it is no JSON, None."""
    import json

    if status != 200:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def tls_accepts(host: str, port: int, context: ssl.SSLContext, timeout: float = 0.5) -> bool:
    """True if a TLS handshake with ``host``:``port`` completes under ``context``."""
    import ssl

    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False
