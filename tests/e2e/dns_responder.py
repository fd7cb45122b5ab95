"""A tiny authoritative DNS responder for tests: the dns addon's upstream.

Run inside a test node's network namespace (``python -m tests.e2e.dns_responder
--listen IP --record name=ip ...``); it answers A queries for its records,
NXDOMAIN for anything else, and prints every question it gets (one line,
flushed) so a test can prove CoreDNS forwarded to it and nowhere else.
"""

from __future__ import annotations

import argparse
import socketserver
import struct
import sys

QTYPE_A = 1
QCLASS_IN = 1
RCODE_NXDOMAIN = 3
TTL = 5


def parse_question(packet: bytes) -> tuple[int, int, str, int, int, int]:
    """(id, flags, name, qtype, qclass, end offset) of the first question."""
    ident, flags, qdcount = struct.unpack_from("!HHH", packet, 0)
    if qdcount < 1:
        raise ValueError("no question")
    labels, pos = [], 12
    while True:
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    qtype, qclass = struct.unpack_from("!HH", packet, pos)
    return ident, flags, ".".join(labels).lower(), qtype, qclass, pos + 4


def answer(packet: bytes, records: dict[str, str]) -> bytes:
    ident, flags, name, qtype, qclass, end = parse_question(packet)
    question = packet[12:end]
    rd = flags & 0x0100
    address = records.get(name.rstrip("."))
    if address is None:
        header = struct.pack("!HHHHHH", ident, 0x8400 | rd | RCODE_NXDOMAIN, 1, 0, 0, 0)
        return header + question
    if qtype != QTYPE_A or qclass != QCLASS_IN:
        return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 0, 0, 0) + question  # NODATA
    rdata = bytes(int(x) for x in address.split("."))
    record = struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, TTL, 4) + rdata
    return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, 1, 0, 0) + question + record


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--record", action="append", default=[], help="name=IPv4")
    opts = ap.parse_args()
    records = dict(r.split("=", 1) for r in opts.record)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            try:
                reply = answer(data, records)
                _, _, name, qtype, _, _ = parse_question(data)
                print(f"query {name} type {qtype} from {self.client_address[0]}", flush=True)
            except (ValueError, IndexError, struct.error):
                return
            sock.sendto(reply, self.client_address)

    with socketserver.ThreadingUDPServer((opts.listen, opts.port), Handler) as server:
        print(f"listening on {opts.listen}:{opts.port}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
