"""The join string: one clear line for each kind of malformation."""

from __future__ import annotations

import ipaddress

import pytest

from microkube.cluster.joinstring import JoinString, parse
from microkube.errors import UsageError

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz012-_9"
FP = "0123456789abcdef" * 4


def test_ipv4() -> None:
    js = parse(f"192.0.2.10:25000/{TOKEN}/{FP}")
    assert js == JoinString(ipaddress.ip_address("192.0.2.10"), 25000, TOKEN, FP)
    assert str(js) == f"192.0.2.10:25000/{TOKEN}/{FP}"


def test_ipv6_in_brackets_round_trips() -> None:
    js = parse(f"[2001:db8::1]:25000/{TOKEN}/{FP}")
    assert js.ip == ipaddress.ip_address("2001:db8::1") and js.port == 25000
    assert js.address == "[2001:db8::1]:25000"
    assert parse(str(js)) == js


def test_fingerprint_in_upper_case_with_colons_is_accepted() -> None:
    colons = ":".join(FP.upper()[i:i + 2] for i in range(0, 64, 2))
    assert parse(f"192.0.2.10:25000/{TOKEN}/{colons}").fingerprint == FP


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse(f"  192.0.2.10:25000/{TOKEN}/{FP}\n").port == 25000


@pytest.mark.parametrize("text, message", [
    # wrong number of parts
    (f"192.0.2.10:25000/{TOKEN}", "has 2 parts separated by '/', not 3"),
    (f"192.0.2.10:25000/{TOKEN}/{FP}/extra", "has 4 parts"),
    ("", "has 1 part separated"),
    # the address
    (f"192.0.2.10/{TOKEN}/{FP}", "the address has no port"),
    (f"2001:db8::1:25000/{TOKEN}/{FP}", "IPv6 address must be in brackets"),
    (f"[2001:db8::1]/{TOKEN}/{FP}", r"needs the form \[address\]:port"),
    (f"[192.0.2.10]:25000/{TOKEN}/{FP}", "only an IPv6 address goes in brackets"),
    (f"node-1.example:25000/{TOKEN}/{FP}", "'node-1.example' is not an IP address"),
    (f"0.0.0.0:25000/{TOKEN}/{FP}", "0.0.0.0 is not the address of a node"),
    (f"224.0.0.1:25000/{TOKEN}/{FP}", "is not the address of a node"),
    (f"[fe80::1%eth0]:25000/{TOKEN}/{FP}", r"'fe80::1%eth0' has a zone \(%eth0\)"),
    # the port
    (f"192.0.2.10:http/{TOKEN}/{FP}", "'http' is not a port number"),
    (f"192.0.2.10:0/{TOKEN}/{FP}", "'0' is not a port number"),
    (f"192.0.2.10:65536/{TOKEN}/{FP}", "'65536' is not a port number"),
    (f"192.0.2.10:{'9' * 5000}/{TOKEN}/{FP}", "is not a port number"),
    (f"192.0.2.10:/{TOKEN}/{FP}", "'' is not a port number"),
    # the token
    (f"192.0.2.10:25000/short/{FP}", "32 to 128 characters long, not 5"),
    (f"192.0.2.10:25000/{TOKEN[:-1]}!/{FP}", "only letters, digits"),
    # the fingerprint
    (f"192.0.2.10:25000/{TOKEN}/{FP[:12]}", "64 hex digits"),
    (f"192.0.2.10:25000/{TOKEN}/{'g' * 64}", "64 hex digits"),
])
def test_each_malformation_is_named(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        parse(text)
    line = str(err.value)
    assert "\n" not in line
    assert "expected <ip>:<port>/<token>/<fingerprint>" in line


def test_a_message_never_repeats_the_token_nor_a_long_part() -> None:
    for text in (f"192.0.2.10:25000/{TOKEN}/{FP[:12]}", f"192.0.2.10:abc/{TOKEN}/{FP}",
                 f"{'x' * 100_000}:25000/{TOKEN}/{FP}"):
        with pytest.raises(UsageError) as err:
            parse(text)
        line = str(err.value)
        assert TOKEN not in line and len(line) < 200, line
        assert line.startswith("join string: ")


def test_an_address_this_host_has_no_route_to_is_a_join_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from microkube.cluster.client import JoinError
    from microkube.cluster.join import source_address

    class NoRoute(socket.socket):
        def connect(self, address: object) -> None:
            raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "socket", NoRoute)
    with pytest.raises(JoinError, match=r"cannot reach the cluster agent at 192\.0\.2\.10:25000: "
                                        r"this host has no route to it \(Network is unreachable\)"):
        source_address(parse(f"192.0.2.10:25000/{TOKEN}/{FP}"))
