"""The test DNS responder (the dns addon's upstream in e2e tests) speaks DNS correctly."""

from __future__ import annotations

import struct

from tests.e2e.dns_responder import answer, parse_question


def _query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def test_a_record() -> None:
    reply = answer(_query("Upstream.Example.Test"), {"upstream.example.test": "192.0.2.53"})
    ident, flags, qd, an = struct.unpack_from("!HHHH", reply, 0)
    assert (ident, qd, an) == (0x1234, 1, 1)
    assert flags & 0x8000 and flags & 0x000F == 0
    assert reply[-4:] == bytes([192, 0, 2, 53])
    assert parse_question(reply)[2] == "upstream.example.test"


def test_unknown_name_is_nxdomain() -> None:
    reply = answer(_query("other.test"), {"upstream.example.test": "192.0.2.53"})
    _, flags, _, an = struct.unpack_from("!HHHH", reply, 0)
    assert flags & 0x000F == 3 and an == 0


def test_other_types_get_no_data() -> None:
    reply = answer(_query("upstream.example.test", qtype=28), {"upstream.example.test": "192.0.2.53"})
    _, flags, _, an = struct.unpack_from("!HHHH", reply, 0)
    assert flags & 0x000F == 0 and an == 0
