"""The cluster agent's HTTP server pieces that need no TLS: routes, error bodies, deadlines."""

from __future__ import annotations

import json
import socket
import time

import pytest

from microkube.cluster.httpserver import (
    ApiError,
    ConnectionSlots,
    Deadlines,
    Reply,
    Request,
    Routes,
    bad_field_line,
    declared_length,
    error_reply,
    one_line,
    plain_address,
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
    # A client's control bytes reach the log escaped, never as terminal controls.
    assert one_line("GET /\x1b[31mred\x00 HTTP/1.1", 100) == "GET /\\x1b[31mred\\x00 HTTP/1.1"


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


def test_connection_slots_cap_the_total_and_each_source() -> None:
    slots = ConnectionSlots(total=3, per_source=2)
    assert slots.take("192.0.2.1") is None
    assert slots.take("192.0.2.1") is None
    assert slots.take("192.0.2.1") == "2 connections from 192.0.2.1 are open already"
    # An IPv6 source counts per /64, as the token rate limit does.
    assert slots.take("2001:db8::1") is None
    assert slots.take("2001:db8::2") == ("3 connections are open already, none of them "
                                         "waiting from a source that holds more than 2")
    slots.give_back("192.0.2.1")
    assert slots.take("2001:db8::2") is None
    assert slots.take("2001:db8:1::3") == ("3 connections are open already, none of them "
                                           "waiting from a source that holds more than 1")
    for address in ("192.0.2.1", "2001:db8::1", "2001:db8::2"):
        slots.give_back(address)
    assert slots.active == 0
    assert slots.take("2001:db8::9") is None


def test_a_full_house_evicts_a_waiting_connection_of_the_source_holding_the_most() -> None:
    slots = ConnectionSlots(total=4, per_source=3)
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        sources = ("192.0.2.1", "192.0.2.2", "192.0.2.2", "192.0.2.2")
        for (ours, _), address in zip(pairs, sources, strict=True):
            assert slots.take(address) is None
            slots.waiting(ours, address)
        slots.working(pairs[3][0])  # it sent a request: never evicted
        # 192.0.2.2 holds the most; its longest-waiting connection goes.
        assert slots.take("192.0.2.3") is None
        assert slots.active == 5 and slots.evicted == 1
        pairs[1][1].settimeout(5)
        assert pairs[1][1].recv(1) == b""  # its client sees the connection end
        for _, theirs in (pairs[0], pairs[2], pairs[3]):
            theirs.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open
                theirs.recv(1)
        slots.give_back("192.0.2.2")  # the evicted connection's thread ends
        # 192.0.2.2 still holds two, one waiting: it goes for a new source.
        assert slots.take("192.0.2.4") is None
        assert slots.evicted == 2
        slots.give_back("192.0.2.2")
        # Every source holds one now: none loses it to another, so a new one is refused,
        # and so is a second connection of a source that holds one (it would hold more).
        full = "4 connections are open already, none of them waiting from a source that holds"
        assert slots.take("192.0.2.5") == f"{full} more than 1"
        assert slots.take("192.0.2.3") == f"{full} more than 2"
        assert slots.evicted == 2
        with pytest.raises(BlockingIOError):  # 192.0.2.1's waiting connection was kept
            pairs[0][1].recv(1)
    finally:
        for pair in pairs:
            for end in pair:
                end.close()


@pytest.mark.parametrize("head, bad", [
    (b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", None),
    (b"GET / HTTP/1.1\r\nHost: a\xe9\tb\r\n\r\n", None),  # obs-text and a tab in a value
    (b"GET / HTTP/1.1\r\n\x98\xf1C\r\n\r\n", "\\x98\\xf1C"),  # no name, no colon
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "Host : a"),  # space before the colon
    (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "folded"),  # obs-fold
    (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", "X: a\\x00b"),  # a control byte
])
def test_header_lines_must_be_name_colon_value(head: bytes, bad: str | None) -> None:
    assert bad_field_line(head) == bad


@pytest.mark.parametrize("values, length", [
    ([], None),
    (["0"], 0),
    ([" 42 ", "42"], 42),  # the same number twice is one number
    (["\t7\t"], 7),  # RFC 9110 5.5: spaces and tabs around a value are not part of it
    (["0" * 5000 + "5"], 5),  # leading zeros past int()'s 4300-digit limit
    (["9" * 5000], 10 ** 18),  # too large for int(): larger than any body
])
def test_a_content_length_is_one_number(values: list[str], length: int | None) -> None:
    assert declared_length(values) == length


@pytest.mark.parametrize("values", [["0", "40"], ["5, 5"], ["-1"], ["+5"], ["\u0661"], [""],
                                    ["7\xa0"], ["\x857"]])  # whitespace to str.strip only
def test_a_content_length_that_is_not_one_number_is_a_400(values: list[str]) -> None:
    with pytest.raises(ApiError) as refused:
        declared_length(values)
    assert (refused.value.status, refused.value.close) == (400, True)


def test_an_ipv4_client_of_a_dual_stack_socket_is_named_by_its_ipv4_address() -> None:
    assert plain_address(("::ffff:192.0.2.7", 5000, 0, 0)) == ("192.0.2.7", 5000, 0, 0)
    assert plain_address(("2001:db8::1", 5000, 0, 0)) == ("2001:db8::1", 5000, 0, 0)
    assert plain_address(("192.0.2.7", 5000)) == ("192.0.2.7", 5000)
