"""A small threaded HTTPS server for a JSON API, on the standard library's http.server.

The cluster agent served its API with aiohttp until issue 11's memory budget: aiohttp
and asyncio cost ≈ 18 MB of PSS in a process that answers a join now and then, while
http.server costs ≈ 3.5 MB. What http.server leaves to its user, and a port open to
the network needs, is added here:

- **Deadlines per phase, not per read.** A TLS handshake, each request body and the
  writing of each answer must end within ``request_timeout`` seconds, and a connection
  must send a complete request head within ``idle_timeout`` seconds, however slowly its
  bytes drip. One watchdog thread (:class:`Deadlines`) shuts down the socket of a
  connection past its deadline; a body too slow gets a 408, a client that does not read
  its answers (pipelined requests never read fill the socket buffers) is cut off.
- **Bounded input.** A request head is at most HEAD_LIMIT bytes (431), a body at most
  the handler's limit (413, by its declared length; a chunked body is refused with
  411), and at most ``max_connections`` connections are served at once, at most
  ``max_per_source`` of them from one source (past that a new one is closed at once, so
  a flood cannot exhaust threads or memory, nor one client lock the others out). When
  all are taken, a new connection evicts one that is waiting for its client (to send a
  request, or to read the answer's end), from the source that holds the most, so a few
  sources cannot lock the others out.
- **Errors are one line of JSON**, ``{"error": "..."}`` with a 4xx: malformed HTTP, an
  unknown path (404), a wrong method (405), an unknown Expect (417). A 5xx is only
  ever a fault of the server's own code (logged with its traceback).

Each connection runs in a thread of its own (socketserver.ThreadingMixIn); handlers are
plain functions of a :class:`Request` that return a :class:`Reply` or raise
:class:`ApiError`.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import ipaddress
import json
import logging
import re
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from microkube.cluster.ratelimit import source_key
from microkube.errors import MicrokubeError

log = logging.getLogger("microkube.cluster.agent.http")
access_log = logging.getLogger("microkube.cluster.agent.access")

HEAD_LIMIT = 16 * 1024  # bytes of request line and headers
MAX_CONNECTIONS = 128
# One source (an address, or an IPv6 /64) may hold this many of them: a client that opens
# connections and sends nothing cannot lock the others out.
MAX_PER_SOURCE = 16
# What error messages and log lines quote of a client's bytes (characters).
QUOTE_LIMIT = 100
LOG_LINE_LIMIT = 300
# Bytes a closing connection reads and discards at most (see _ThreadingServer._linger).
LINGER_LIMIT = 256 * 1024
# Seconds between two looks of the watchdog; a deadline is kept to within this.
WATCH_INTERVAL = 0.2
SERVER_NAME = "microkube-cluster-agent"
# Digits of a Content-Length read as a number; a longer one is larger than any body taken.
MAX_LENGTH_DIGITS = 18


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx) and one line for the client.

    ``headers`` go with the answer (e.g. Retry-After); ``close`` says the connection
    is unusable after it (a body left half-read).
    """

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close


@dataclass
class Reply:
    """An answer: ``status``, ``body`` bytes of ``content_type``, extra ``headers``, and
    whether the connection closes after it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace folded to single spaces and other unprintable characters
    escaped (a client's bytes must not write terminal controls into the log), cut to
    ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in " ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "..."


def json_reply(doc: Any, status: int = 200) -> Reply:
    """``doc`` as a JSON answer with ``status``."""
    return Reply(status, json.dumps(doc).encode())


def error_reply(status: int, message: str, headers: dict[str, str] | None = None,
                close: bool = False) -> Reply:
    """``{"error": message}`` with ``status``; the message is folded onto one line."""
    return Reply(status, json.dumps({"error": " ".join(message.split())}).encode(),
                 headers=dict(headers or {}), close=close)


# RFC 9110 5.1 and 5.5: a field name is a token; a value is visible characters, spaces,
# tabs and obs-text. No obs-fold (a line that starts with whitespace), no control bytes.
_FIELD_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r?\n")


def bad_field_line(head: bytes) -> str | None:
    """The first header line of ``head`` (request line, header lines, blank line) that is not
    a well-formed field line, shown safely; None if all are. http.server's parser would
    take such a line as a defect and go on, but a request a proxy may read otherwise
    (request smuggling) is refused, as RFC 9112 5 asks."""
    for line in head.splitlines(keepends=True)[1:-1]:
        if not _FIELD_LINE.fullmatch(line):
            return one_line(repr(line.rstrip(b"\r\n"))[2:-1], QUOTE_LIMIT)
    return None


def declared_length(values: list[str]) -> int | None:
    """The body length of a request's Content-Length field ``values`` (None: it has none).

    Raises ApiError 400 (closing the connection) unless they are one number, as RFC 9112
    6.3 asks. A number past int()'s digit limit counts as the largest it allows.
    """
    if not values:
        return None
    numbers = {value.strip(" \t") for value in values}  # RFC 9110 5.5: OWS is SP or HTAB
    number = numbers.pop()
    if numbers or not number.isdigit() or not number.isascii():
        raise ApiError(400, "the request's Content-Length is not one number", close=True)
    number = number.lstrip("0") or "0"
    return int(number) if len(number) <= MAX_LENGTH_DIGITS else 10 ** MAX_LENGTH_DIGITS


@dataclass(eq=False)
class Request:
    """One request as a handler sees it: ``method``, ``path`` (decoded, no query),
    ``remote`` (the client's address), ``headers``, ``peercert`` (the client's verified
    certificate as ssl.SSLSocket.getpeercert() gives it, or None), ``content_length`` (its
    one Content-Length: declared_length) and its body through :meth:`read_body`, which
    reads ``stream``, the connection ``sock`` carries (which ``slots`` may evict while the
    body is awaited)."""

    method: str
    path: str
    remote: str
    headers: Message
    peercert: Any
    content_length: int | None
    stream: io.BufferedIOBase = field(repr=False)
    sock: socket.socket = field(repr=False)
    slots: ConnectionSlots | None = field(default=None, repr=False)
    body_read: bool = False

    @property
    def declares_body(self) -> bool:
        """Whether the request says a body follows its head."""
        return "Transfer-Encoding" in self.headers or bool(self.content_length)

    def read_body(self, limit: int, timeout: float) -> bytes:
        """The body, at most ``limit`` bytes, which must arrive within ``timeout`` seconds.

        Raises ApiError (closing the connection): 411 for a chunked body, 400 for a bad
        Content-Length or a client that went away, 413 past ``limit``, 408 too slow.
        """
        self.body_read = True
        if "Transfer-Encoding" in self.headers:
            raise ApiError(411, "send the body with a Content-Length, not a Transfer-Encoding",
                           close=True)
        size = self.content_length
        if size is None:
            return b""
        if size > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes", close=True)
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        got = 0
        if self.slots is not None:
            self.slots.waiting(self.sock, self.remote)
        try:
            while got < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self.sock.settimeout(remaining)
                chunk = self.stream.read1(size - got)
                if not chunk:
                    raise ApiError(400, "cannot read the request body: the client closed the "
                                        "connection", close=True)
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            raise ApiError(408, f"the request body did not arrive within {timeout:g} s",
                           close=True) from None
        except (OSError, ValueError) as e:
            raise ApiError(400, f"cannot read the request body: {type(e).__name__}",
                           close=True) from None
        finally:
            if self.slots is not None:
                self.slots.working(self.sock)
            self.sock.settimeout(None)
        return b"".join(chunks)


Handler = Callable[[Request], Reply]


class Routes:
    """Which handler serves which method on which path; a GET route also serves HEAD."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Serve ``method`` requests for exactly ``path`` with ``handler``."""
        methods = self._routes.setdefault(path, {})
        methods[method] = handler
        if method == "GET":
            methods.setdefault("HEAD", handler)

    def resolve(self, method: str, path: str) -> Handler:
        """The handler for ``method`` on ``path``; ApiError 404 for an unknown path, 405
        (with Allow) for a method the path does not take."""
        shown = one_line(path, QUOTE_LIMIT)
        methods = self._routes.get(path)
        if methods is None:
            raise ApiError(404, f"no such endpoint: {shown}")
        handler = methods.get(method)
        if handler is None:
            allowed = sorted(methods)
            raise ApiError(405, f"{one_line(method, QUOTE_LIMIT)} is not allowed on {shown}; "
                                f"use {', '.join(allowed)}",
                           headers={"Allow": ",".join(allowed)})
        return handler


class Deadlines:
    """Sockets with a deadline; one thread shuts down each one whose deadline passed.

    Shutting a socket down wakes the thread blocked reading it (it reads end of file),
    so a deadline holds however slowly a client sends. A socket must be :meth:`clear`-ed
    before it is closed: the shutdown happens under the same lock, so it never reaches a
    file descriptor reused by another connection.
    """

    def __init__(self, interval: float = WATCH_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, socket.socket]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="deadlines", daemon=True)

    def set(self, sock: socket.socket, seconds: float) -> None:
        """Shut ``sock`` down unless it is cleared within ``seconds``."""
        with self._lock:
            self._deadlines[id(sock)] = (time.monotonic() + seconds, sock)

    def clear(self, sock: socket.socket) -> None:
        """Forget ``sock``'s deadline (before it is closed or hands over to a handler)."""
        with self._lock:
            self._deadlines.pop(id(sock), None)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (within ``interval`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            now = time.monotonic()
            with self._lock:
                for key, (deadline, sock) in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[key]
                        # socket.socket's own shutdown: ssl.SSLSocket's would drop the TLS
                        # state under the reading thread's feet.
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class ConnectionSlots:
    """Counts open connections, at most ``total`` in all and ``per_source`` from one source
    (ratelimit.source_key: an address, or an IPv6 /64).

    A connection that is waiting for its client (in its TLS handshake, for a request head
    or body, or draining after its answer) is *waiting* and may be evicted: when every slot
    is taken, a new connection shuts down the longest-waiting connection of the source that
    holds the most, if that source would still hold no fewer than the new one's; so a few
    sources that open connections and send little cannot lock a new client out. A waiting
    socket must be marked :meth:`working` before it is closed: its shutdown happens under
    the same lock, so it never reaches a file descriptor reused by another connection.
    """

    def __init__(self, total: int, per_source: int) -> None:
        self.total = total
        self.per_source = per_source
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}
        # id(socket) -> (its source key, the socket), in the order they began to wait.
        self._waiting: dict[int, tuple[str, socket.socket]] = {}
        self.active = 0
        self.evicted = 0

    def take(self, address: str) -> str | None:
        """Count a connection from ``address``; None if it may be served (evicting a waiting
        connection if every slot is taken), else why not."""
        key = source_key(address)
        with self._lock:
            held = self._open.get(key, 0)
            if held >= self.per_source:
                return f"{self.per_source} connections from {key} are open already"
            evicted = None
            if self.active >= self.total:
                evicted = self._evict_one(held + 1)
                if evicted is None:
                    return (f"{self.total} connections are open already, none of them "
                            f"waiting from a source that holds more than {held + 1}")
            self._open[key] = held + 1
            self.active += 1
        if evicted is not None:
            log.warning("evicted a waiting connection from %s: every connection slot is taken",
                        evicted)
        return None

    def _evict_one(self, newcomer_holds: int) -> str | None:
        """Shut down the longest-waiting connection of the source with the most open, if that
        source still holds at least ``newcomer_holds`` (what the new connection's source will
        hold) once it is gone: so a source never loses a connection to one that holds more.
        Returns the evicted connection's source, None if there is no such connection. Its
        thread reads end of file and gives its slot back; until then ``active`` may exceed
        ``total`` by the evictions under way. Called with the lock held."""
        if not self._waiting:
            return None
        victim = max(self._waiting, key=lambda k: self._open.get(self._waiting[k][0], 0))
        if self._open.get(self._waiting[victim][0], 0) - 1 < newcomer_holds:
            return None
        key, sock = self._waiting.pop(victim)  # max() keeps the first: the longest waiting
        # socket.socket's own shutdown: ssl.SSLSocket's would drop the TLS state under the
        # reading thread's feet.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        self.evicted += 1
        return key

    def waiting(self, sock: socket.socket, address: str) -> None:
        """``sock`` (from ``address``) has not sent a complete request: it may be evicted."""
        with self._lock:
            self._waiting[id(sock)] = (source_key(address), sock)

    def working(self, sock: socket.socket) -> None:
        """``sock`` sent a request, or is about to be closed: it may no longer be evicted."""
        with self._lock:
            self._waiting.pop(id(sock), None)

    def give_back(self, address: str) -> None:
        """Uncount a connection ``take`` counted."""
        key = source_key(address)
        with self._lock:
            self.active -= 1
            left = self._open[key] - 1
            if left:
                self._open[key] = left
            else:
                del self._open[key]


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    """One connection: reads each request head within the deadlines and HEAD_LIMIT, then
    lets the routes answer it, until the client or an error closes the connection."""

    server: _ThreadingServer
    connection: socket.socket
    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.stream = self.rfile  # the connection's reader; rfile is swapped per head

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # for answers to a request that never parsed
        self.requestline = ""
        self.started = time.monotonic()
        try:
            with self.server.waiting_for(self.connection, self.client_address[0],
                                         self.server.idle_timeout):
                head = self._read_head()
        except OSError:
            return  # cut off by its deadline or an eviction, or the client went away
        if head is None:
            return
        bad = bad_field_line(head)
        if bad is not None:
            self._answer(self._malformed(f"a header line that is not 'name: value': {bad}"))
            return
        # http.server parses the head from a copy; the body is read from the stream.
        self.rfile = io.BytesIO(head)
        try:
            self.raw_requestline = self.rfile.readline(HEAD_LIMIT + 1)
            if not self.parse_request():
                self.close_connection = True
                return
        except Exception as e:  # the email parser's view of hostile header bytes
            self._answer(self._malformed(f"{type(e).__name__}"))
            return
        finally:
            self.rfile = self.stream
        self._dispatch()

    def _read_head(self) -> bytes | None:
        """The request line and headers up to their blank line, or None when the client
        closed the connection first; a head past HEAD_LIMIT is answered with a 431."""
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.stream.readline(HEAD_LIMIT + 1 - size)
            if not line or (not line.endswith(b"\n") and size + len(line) <= HEAD_LIMIT):
                return None  # end of file before the head ended
            size += len(line)
            if size > HEAD_LIMIT:
                self._answer(error_reply(431, f"the request head is larger than {HEAD_LIMIT} "
                                              "bytes", close=True))
                return None
            if not lines and line in (b"\r\n", b"\n"):
                continue  # RFC 9112 2.2: ignore empty lines before the request line
            lines.append(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(lines)

    def _malformed(self, detail: str) -> Reply:
        log.warning("malformed request from %s: %s", self.client_address[0],
                    one_line(detail, LOG_LINE_LIMIT))
        return error_reply(400, f"malformed HTTP request: {one_line(detail, QUOTE_LIMIT)}",
                           close=True)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line, too many headers), in JSON; its
        505 for an HTTP version it cannot serve is the client's fault too, so a 400."""
        if code == 431:
            what = "too many headers" if message == "Too many headers" else "a line too long"
            reply = error_reply(431, f"the request head has {what}", close=True)
        else:
            reply = self._malformed(message or HTTPStatus(code).phrase)
        self._answer(reply)

    def _dispatch(self) -> None:
        """Answer the parsed request with its route's handler."""
        server = self.server
        try:
            path = unquote(urlsplit(self.path).path, errors="replace")
        except ValueError:  # urlsplit refuses a bracketed host that is no IPv6 address
            self._answer(self._malformed(f"a request target that is not a URL: {self.path!r}"))
            return
        request: Request | None = None
        try:
            request = Request(self.command, path, self.client_address[0], self.headers,
                              _peercert(self.connection),
                              declared_length(self.headers.get_all("Content-Length") or []),
                              self.stream, self.connection, server.slots)
            # As http.server reads it (parse_request): one Expect, exactly 100-continue.
            expects = self.headers.get_all("Expect") or []
            if any(expect.lower() != "100-continue" for expect in expects) or len(expects) > 1:
                raise ApiError(417, "Expectation Failed: only one Expect: 100-continue is "
                                    "understood")
            reply = server.routes.resolve(self.command, path)(request)
        except ApiError as e:
            reply = error_reply(e.status, e.message, e.headers, e.close)
        except Exception:
            log.exception("unexpected error serving %s %s", one_line(self.command, QUOTE_LIMIT),
                          one_line(path, QUOTE_LIMIT))
            reply = error_reply(500, "internal error in the cluster agent; see its log")
        if request is not None and request.declares_body and not request.body_read:
            reply.close = True  # its unread body would be taken for the next request
        self._answer(reply, head_only=self.command == "HEAD")

    def _answer(self, reply: Reply, head_only: bool = False) -> None:
        """Write ``reply`` (with its length, so a client never waits for the close), log it,
        and mark the connection for closing if the reply says so."""
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = ""
        lines = [f"{self.protocol_version} {reply.status} {phrase}",
                 f"Server: {SERVER_NAME}",
                 f"Date: {self.date_time_string()}",
                 f"Content-Type: {reply.content_type}",
                 f"Content-Length: {len(reply.body)}",
                 *(f"{k}: {v}" for k, v in reply.headers.items())]
        if reply.close or self.close_connection:
            lines.append("Connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        undelivered = ""
        try:
            with self._write_deadline():
                self.wfile.write(head if head_only else head + reply.body)
                self.wfile.flush()
        except OSError as e:
            self.close_connection = True
            undelivered = f" (not delivered: {type(e).__name__})"
        access_log.info('%s "%s" %d %d %.6f%s', self.client_address[0],
                        one_line(self.requestline, LOG_LINE_LIMIT), reply.status,
                        len(reply.body), time.monotonic() - self.started, undelivered)

    @contextlib.contextmanager
    def _write_deadline(self) -> Iterator[None]:
        """Cut the connection off if what is written in this block is not sent within
        request_timeout: a blocking send to a client that never reads would wait forever."""
        deadlines = self.server.deadlines
        deadlines.set(self.connection, self.server.request_timeout)
        try:
            yield
        finally:
            deadlines.clear(self.connection)

    def handle_expect_100(self) -> bool:
        """http.server's 100 Continue, sent within the same deadline as an answer; none for a
        request with a second Expect, which _dispatch refuses with a 417."""
        if len(self.headers.get_all("Expect") or []) > 1:
            return True
        try:
            with self._write_deadline():
                return super().handle_expect_100()
        except OSError:
            self.close_connection = True
            return False

    def log_message(self, format: str, *args: Any) -> None:
        log.warning("%s: %s", self.client_address[0], one_line(format % args, LOG_LINE_LIMIT))


def _peercert(sock: socket.socket) -> Any:
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(ValueError, OSError):
            return sock.getpeercert()
    return None


def plain_address(address: tuple[Any, ...]) -> tuple[Any, ...]:
    """A client's (host, port, ...) with an IPv4 client of a dual-stack socket
    (``::ffff:192.0.2.1``) named by its IPv4 address, as the node and its logs know it."""
    try:
        ip = ipaddress.ip_address(str(address[0]))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return (str(ip.ipv4_mapped), *address[1:])
    return address


class _ThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Accepts on a bound socket; each connection gets a thread (within ``slots``) that does
    its TLS handshake within request_timeout, then serves its requests."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, sock: socket.socket, routes: Routes, tls: ssl.SSLContext,
                 request_timeout: float, idle_timeout: float, slots: ConnectionSlots) -> None:
        super().__init__(sock.getsockname(), _RequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.routes = routes
        self.tls = tls
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        self.deadlines = Deadlines()
        self.slots = slots

    def process_request(self, request: Any, client_address: Any) -> None:
        client_address = plain_address(client_address)
        refused = self.slots.take(client_address[0])
        if refused is not None:
            log.warning("%s: connection refused: %s", client_address[0], refused)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError as e:  # no thread could be started: the slot must come back
            log.warning("%s: connection refused: %s", client_address[0], e)
            self.slots.give_back(client_address[0])
            self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give_back(client_address[0])

    @contextlib.contextmanager
    def waiting_for(self, sock: socket.socket, address: str, seconds: float) -> Iterator[None]:
        """While the block waits for the client at ``address`` to send on ``sock``: cut it
        off after ``seconds``, and let a new connection evict it (ConnectionSlots)."""
        self.deadlines.set(sock, seconds)
        self.slots.waiting(sock, address)
        try:
            yield
        finally:
            self.slots.working(sock)
            self.deadlines.clear(sock)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:  # no handshake yet, so nothing to wait for
            conn = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            return
        try:
            try:
                with self.waiting_for(conn, client_address[0], self.request_timeout):
                    conn.do_handshake()
            except (OSError, ValueError) as e:
                log.debug("%s: TLS handshake failed: %s", client_address[0], e)
                return
            _RequestHandler(conn, client_address, self)
            with self.waiting_for(conn, client_address[0], self.request_timeout):
                self._linger(conn)
        finally:
            self.slots.working(conn)
            self.deadlines.clear(conn)
            conn.close()

    def _linger(self, conn: socket.socket) -> None:
        """Send our end of the stream, then read what the client still sends (a body we did
        not want) until it closes, for at most request_timeout seconds and LINGER_LIMIT
        bytes: closing a socket with unread bytes sends a reset, which may destroy the
        answer before the client has read it."""
        deadline = time.monotonic() + self.request_timeout
        drained = 0
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(conn, socket.SHUT_WR)
            while drained < LINGER_LIMIT:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                conn.settimeout(remaining)
                chunk = conn.recv(65536)
                if not chunk:
                    return
                drained += len(chunk)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("unexpected error on the connection from %s", client_address[0])


@dataclass
class JsonHttpsServer:
    """Serves ``routes`` over TLS on ``bind_address`` (None: every address, IPv4 and IPv6)
    and ``port`` until :meth:`stop`; timeouts in seconds (see the module's docstring)."""

    routes: Routes
    tls: ssl.SSLContext
    port: int
    bind_address: str | None
    request_timeout: float
    idle_timeout: float
    max_connections: int = MAX_CONNECTIONS
    max_per_source: int = MAX_PER_SOURCE
    _server: _ThreadingServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def start(self) -> tuple[Any, ...]:
        """Listen and serve in threads of its own; the address listened on.

        Raises MicrokubeError (one line) if the address or port cannot be had.
        """
        sock = self._listen()
        server = _ThreadingServer(sock, self.routes, self.tls, self.request_timeout,
                                  self.idle_timeout,
                                  ConnectionSlots(self.max_connections, self.max_per_source))
        server.deadlines.start()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.5,),
                                        name="accept", daemon=True)
        self._thread.start()
        address: tuple[Any, ...] = sock.getsockname()
        return address[:2]

    def _listen(self) -> socket.socket:
        host = self.bind_address or ""
        where = f"{self.bind_address or '*'}:{self.port}"
        try:
            if not host and socket.has_dualstack_ipv6():
                return socket.create_server(("", self.port), family=socket.AF_INET6,
                                            dualstack_ipv6=True)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return socket.create_server((host, self.port), family=family)
        except OSError as e:
            raise MicrokubeError(f"cannot listen on {where}: {e.strerror or e}") from None

    def stop(self, grace: float) -> None:
        """Stop accepting, then give open connections up to ``grace`` seconds to finish."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.server_close()
        deadline = time.monotonic() + grace
        while server.slots.active and time.monotonic() < deadline:
            time.sleep(0.05)
        server.deadlines.stop()
