"""A bounded fuzz run of the real agent: a few thousand malformed requests, never a 5xx.

Requests come from many 127.0.1.x addresses, so most reach the handlers
rather than the rate limit. After the run the agent is still up and admits a
good joiner.
"""

from __future__ import annotations

import http.client
import json
import string
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microkube.cluster.invitation import create
from tests.cluster.conftest import Agent, Client

HTTP_EXAMPLES = 2000
RAW_EXAMPLES = 400

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
token_like = st.text(alphabet=string.ascii_letters + string.digits + "-_/!", min_size=0,
                     max_size=140)
join_like = st.fixed_dictionaries({}, optional={
    "token": token_like | json_values,
    "name": st.sampled_from(["worker-1", "cp-1", "", "UPPER", "a" * 300]) | json_values,
    "ip": st.sampled_from(["192.0.2.30", "192.0.2.10", "::1", "fe80::1", "1.2.3", ""])
    | json_values,
    "role": st.sampled_from(["worker", "control-plane", "master"]) | json_values,
    "extra": json_values,
})
bodies = st.one_of(
    st.none(),
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    join_like.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 2000).map(lambda n: b"[" * n + b"]" * n),
)
paths = st.sampled_from([
    "/v1/ca", "/v1/join/check", "/v1/join/release", "/", "/v1", "/v1/join", "/v1/join/check/",
    "//v1/ca", "/v1/ca?x=1", "/v1/join/check?token=x", "/%00", "/../v1/ca", "/v1/%2e%2e/ca",
]) | st.text(max_size=60).map(lambda s: "/" + quote(s, safe="/?&=%"))
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
                           "BREW"])
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "Content-Encoding", "Accept", "Expect", "X-Forwarded-For"]),
    st.sampled_from(["application/json", "text/html", "gzip", "deflate", "br", "*/*",
                     "100-continue", "127.0.0.1", "identity", "x" * 500]),
    max_size=3,
)
# Each has something before the blank line that ends its head, so the agent answers at
# once instead of waiting for a request until the idle timeout (tested on its own).
raw_requests = st.one_of(
    st.binary(min_size=1, max_size=600).filter(bytes.strip).map(lambda b: b + b"\r\n\r\n"),
    st.tuples(methods, paths, st.binary(max_size=300)).map(
        lambda t: f"{t[0]} {t[1]} HTTP/1.1\r\n".encode() + t[2] + b"\r\n\r\n"),
    st.binary(max_size=200).map(lambda b: b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n" + b + b"\r\n0\r\n\r\n"),
)
sources = st.integers(1, 250).map(lambda n: f"127.0.1.{n}")

FUZZ = settings(max_examples=HTTP_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check(status: int, body: bytes, method: str) -> None:
    assert status < 500, (status, body)
    if status >= 400 and method != "HEAD":
        doc: Any = json.loads(body)
        assert list(doc) == ["error"] and "\n" not in doc["error"]


@FUZZ
@given(method=methods, path=paths, body=bodies, extra=headers, source=sources)
def test_malformed_http_requests_never_get_a_5xx(agent: Agent, method: str, path: str,
                                                 body: bytes | None, extra: dict[str, str],
                                                 source: str) -> None:
    client = agent.client(source)
    try:
        resp = client.request(method, path, body, extra)
    except (http.client.HTTPException, ConnectionError):
        # Framing the agent refused to read (a bad Transfer-Encoding): it closed the connection.
        assert agent.alive()
        return
    _check(resp.status, resp.body, method)
    # A response without a length would keep the client waiting until the agent hangs up.
    assert "content-length" in resp.headers


@settings(FUZZ, max_examples=RAW_EXAMPLES)
@given(data=raw_requests)
def test_malformed_bytes_never_get_a_5xx(agent: Agent, data: bytes) -> None:
    reply = agent.client("127.0.2.1").raw(data, wait=5)
    if reply:
        status_line = reply.split(b"\r\n", 1)[0]
        assert status_line[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), reply[:200]
        assert int(status_line[9:12]) < 500, reply[:300]


def test_after_the_fuzz_the_agent_still_admits_a_good_joiner(agent: Agent) -> None:
    assert agent.alive()
    token = create(agent.paths, 3600, host_ips=lambda: []).token
    fresh: Client = agent.client("127.0.0.200")
    resp = fresh.post("/v1/join/check", {"token": token, "name": "after-fuzz",
                                         "ip": "192.0.2.99", "role": "control-plane"})
    assert resp.status == 200, resp.body
    assert resp.json()["status"] == "reserved"
    assert "Traceback" not in agent.log.read_text()
