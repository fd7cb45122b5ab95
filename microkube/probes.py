"""Cheap readiness probes built on the standard library.

``requests`` would cost ~100 ms of import time in ``microkube status``;
these probes need only a socket, ssl and http.client, and ssl and http.client
(with the email package it pulls in) are imported by the probes that use them,
so a plain socket probe (``microkube kubectl``'s check) costs neither.
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
    """``method`` (without a body) on ``url``: the status and body; (0, b"") when nothing answers."""
    import http.client

    scheme, _, rest = url.partition("://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout,
                                           context=context or tls_context())
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, "/" + path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


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
