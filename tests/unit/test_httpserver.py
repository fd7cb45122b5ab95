"""The cluster agent's HTTP server pieces that need no TLS: routes, error bodies, deadlines."""

from __future__ import annotations

import json
import socket
import time

import pytest

from microkube.cluster.httpserver import (
    ApiError,
    Deadlines,
    Reply,
    Request,
    Routes,
    error_reply,
    one_line,
)


def _ok(request: Request) -> Reply:
    return Reply(200, b"ok")


def test_routes_answer_404_and_405_with_what_is_allowed() -> None:
    routes = Routes()
    routes.add("GET", "/v1/ca", _ok)
    routes.add("POST", "/v1/join/check", _ok)
    assert routes.resolve("GET", "/v1/ca") is _ok
    assert routes.resolve("HEAD", "/v1/ca") is _ok  # a GET route serves HEAD too
    with pytest.raises(ApiError) as missing:
        routes.resolve("GET", "/v1/" + "x" * 500)
    assert missing.value.status == 404 and len(missing.value.message) < 140
    with pytest.raises(ApiError) as wrong:
        routes.resolve("DELETE", "/v1/ca")
    assert wrong.value.status == 405
    assert wrong.value.message == "DELETE is not allowed on /v1/ca; use GET, HEAD"
    assert wrong.value.headers == {"Allow": "GET,HEAD"}


def test_an_error_body_is_one_line_of_json() -> None:
    reply = error_reply(400, "two\nlines  and\tspace", {"Retry-After": "3"}, close=True)
    assert json.loads(reply.body) == {"error": "two lines and space"}
    assert (reply.status, reply.content_type, reply.close) == (400, "application/json", True)
    assert reply.headers == {"Retry-After": "3"}
    assert one_line("a\n" * 10, 5) == "a a a..."


def test_a_deadline_wakes_a_blocked_reader_and_a_cleared_one_does_not() -> None:
    deadlines = Deadlines(interval=0.05)
    deadlines.start()
    try:
        cut, cut_peer = socket.socketpair()
        kept, kept_peer = socket.socketpair()
        with cut, cut_peer, kept, kept_peer:
            deadlines.set(cut, 0.2)
            deadlines.set(kept, 0.2)
            deadlines.clear(kept)
            start = time.monotonic()
            cut.settimeout(5)
            assert cut.recv(10) == b""  # shut down, though its peer never closed
            assert time.monotonic() - start < 2
            time.sleep(0.3)
            kept_peer.sendall(b"x")
            kept.settimeout(5)
            assert kept.recv(10) == b"x"
    finally:
        deadlines.stop()
