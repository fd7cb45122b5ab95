"""Cheap readiness probes built on the standard library.

``requests`` would cost ~100 ms of import time in ``microkube status``;
these probes need only a socket and ssl, and ssl is imported by the probes that
use it, so a plain socket probe (``microkube kubectl``'s check) costs no TLS.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl


def unix_socket_accepts(path: Path, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host``:``port`` is accepted within ``timeout`` s."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


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

    One HTTP/1.0 request on its own connection, read until the server closes it: the
    servers asked here (Go's net/http, aiohttp) answer that without chunking. Written on
    a socket rather than http.client, which with the email package it imports costs
    ~3 MB in every daemon that probes (the supervisor) and its import time in ``status``.
    ``timeout`` (s) bounds each connect, send and receive. Raises OSError (ssl.SSLError
    included) when the exchange fails, ValueError when the answer is not HTTP.
    """
    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    address = host.strip("[]")
    head = f"{method} /{path} HTTP/1.0\r\nHost: {hostport}\r\nAccept: application/json, */*\r\n"
    if body or method in ("POST", "PUT", "PATCH"):
        head += f"Content-Length: {len(body)}\r\n"
        head += f"Content-Type: {content_type}\r\n" if content_type else ""
    chunks: list[bytes] = []
    with socket.create_connection((address, int(port)), timeout=timeout) as raw:
        conn = (context or tls_context()).wrap_socket(raw, server_hostname=address) \
            if scheme == "https" else raw
        with conn:
            conn.sendall(head.encode() + b"User-Agent: microkube\r\n\r\n" + body)
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    status, answer = parse_response(b"".join(chunks))
    if status == 0:
        raise ValueError(f"{url}: the answer is not HTTP")
    return status, answer


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """(status, body) of an HTTP/1.x response read to its end; (0, b"") if it is not one.

    A chunked body is joined; without chunking the body is what follows the headers, cut
    to Content-Length when one is given.
    """
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return 0, b""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _unchunk(body)
    elif headers.get(b"content-length", b"").isdigit():
        body = body[:int(headers[b"content-length"])]
    return int(parts[1]), body


def _unchunk(data: bytes) -> bytes:
    """A chunked body's bytes joined (RFC 9112 section 7.1); stops at the last chunk or at
    data that ends early."""
    out, pos = [], 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            break
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(data[end + 2:end + 2 + size])
        pos = end + 2 + size + 2
    return b"".join(out)


def http_ok(url: str, *, context: ssl.SSLContext | None = None, timeout: float = 1.0) -> bool:
    return http_get(url, context=context, timeout=timeout)[0] == 200


def http_json(url: str, *, context: ssl.SSLContext | None = None,
              timeout: float = 1.0) -> Any:
    status, body = http_get(url, context=context, timeout=timeout)
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
