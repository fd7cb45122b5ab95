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
    from typing import Any, BinaryIO


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

    One request on its own connection (:class:`HttpConnection`). ``timeout`` (s) bounds
    each connect, send and receive. Raises OSError (ssl.SSLError included) when the
    exchange fails, ValueError when the answer is not HTTP.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = HttpConnection(f"{parts.scheme}://{parts.netloc}", context=context, timeout=timeout)
    try:
        return conn.exchange(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                             body, content_type=content_type)
    finally:
        conn.close()


# Bounds on an answer's head, as http.client's: a line, and the number of header lines.
MAX_LINE = 65536
MAX_HEADERS = 100
# Methods whose request carries a Content-Length even when empty (as http.client sends).
BODY_METHODS = ("POST", "PUT", "PATCH")


class NotHttpError(ValueError):
    """The answer is not HTTP/1.x (a bad status line or head, a body cut short)."""


class HttpConnection:
    """Requests to one server (``base``: "https://host:port" or "http://host:port") over one
    connection kept open between them (HTTP/1.1 keep-alive), so a second request costs no
    new TLS handshake. ``timeout`` (s) bounds each connect, send and receive. Close it
    with :meth:`close`.

    HTTP/1.1 as RFC 9112 frames it (Content-Length, chunked, or until close), on a socket:
    http.client would do, but it imports the email package to parse headers, ~18 ms of
    every ``microkube status`` (issue 11), and these requests need none of it.
    """

    def __init__(self, base: str, *, context: ssl.SSLContext | None = None,
                 timeout: float = 1.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        tls = parts.scheme == "https"
        self.base = base
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if tls else 80)
        default_port = self._port == (443 if tls else 80)
        name = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = name if default_port else f"{name}:{self._port}"
        self._context = (context or tls_context()) if tls else None
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: BinaryIO | None = None
        self._used = False

    def _connect(self) -> BinaryIO:
        name = wire_name(self._host)
        sock = socket.create_connection((name, self._port),  # type: ignore[arg-type]  # bytes: see wire_name
                                        timeout=self._timeout)
        if self._context is not None:
            try:
                sock = self._context.wrap_socket(sock, server_hostname=name)
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._reader = sock.makefile("rb")
        return self._reader

    def exchange(self, method: str, path: str, body: bytes = b"", *,
                 content_type: str = "") -> tuple[int, bytes]:
        """``method`` on ``path`` (with its query) with ``body``: the status and the answer's
        body. A kept connection the server has closed meanwhile is opened again, once.
        Raises OSError (ssl.SSLError included) when the exchange fails, ValueError when the
        answer is not HTTP."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self._host_header}",
                "Accept-Encoding: identity", "Accept: application/json, */*",
                "User-Agent: microkube"]
        if content_type:
            head.append(f"Content-Type: {content_type}")
        if body or method in BODY_METHODS:
            head.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        for retry in (self._used, False):
            try:
                reader = self._reader or self._connect()
                assert self._sock is not None
                self._sock.sendall(request)
                status, answer, keep = _read_answer(reader, method)
                self._used = True
                if not keep:
                    self.close()
                return status, answer
            except (ConnectionResetError, BrokenPipeError):
                self.close()
                if not retry:
                    raise
            except NotHttpError as e:
                self.close()
                raise ValueError(f"{self.base}{path}: the answer is not HTTP ({e})") from None
            except OSError:
                self.close()
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
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise NotHttpError("a line too long")
    return line


def _read_answer(reader: BinaryIO, method: str) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection may be kept) of the answer in ``reader`` to
    a ``method`` request. Raises ConnectionResetError when the server closed without an
    answer, NotHttpError when the answer is not HTTP/1.x, OSError when reading fails."""
    while True:
        line = _line(reader)
        if not line:
            raise ConnectionResetError("the server closed the connection without an answer")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " ", "\r", "\n"):
            raise NotHttpError(f"status line {line[:40]!r}")
        status = int(code)
        headers = _read_headers(reader)
        if status != 100:  # 100 Continue precedes the answer (http.client skips it too)
            break
    keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method == "HEAD" or status in (204, 304) or status < 200:
        return status, b"", keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, _read_chunked(reader), keep
    length = headers.get("content-length")
    if length is None:
        return status, reader.read(), False  # the body ends where the connection does
    if not length.strip().isdigit():
        raise NotHttpError(f"Content-Length {length!r}")
    return status, _read_exactly(reader, int(length)), keep


def _read_headers(reader: BinaryIO) -> dict[str, str]:
    """The header lines up to the blank one, by lower-case name (a repeated one joined
    with ", ", as RFC 9110 allows)."""
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _line(reader)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise NotHttpError("the head ends early")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise NotHttpError(f"header line {line[:40]!r}")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise NotHttpError(f"more than {MAX_HEADERS} header lines")


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise NotHttpError(f"the body ends after {len(data)} of {size} bytes")
    return data


def _read_chunked(reader: BinaryIO) -> bytes:
    """A chunked body (RFC 9112 section 7.1), its trailer lines read past."""
    chunks = []
    while True:
        size = _line(reader).split(b";", 1)[0].strip()
        try:
            n = int(size, 16)
        except ValueError:
            raise NotHttpError(f"chunk size {size[:20]!r}") from None
        if n == 0:
            break
        chunks.append(_read_exactly(reader, n))
        if _line(reader).strip():
            raise NotHttpError("a chunk without its line end")
    while _line(reader).strip():  # trailer fields, up to the blank line
        pass
    return b"".join(chunks)


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
