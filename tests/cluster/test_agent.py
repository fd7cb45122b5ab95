"""The real cluster agent over TLS: the pinned CA, tokens, the rate limit, and bad input."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from microkube.cluster.invitation import create
from microkube.cluster.tokens import Holder, TokenStore, new_token
from microkube.pki.certs import is_issued_by, san_names
from tests.cluster.conftest import (
    IDLE_TIMEOUT,
    NODE_IP,
    NODE_NAME,
    REQUEST_TIMEOUT,
    Agent,
    Client,
    Response,
    pinned_context,
    running_agent,
    unverified_context,
)
from tests.clusternode import node_env, prepare_node_root


def new_join_token(agent: Agent, ttl: int = 3600) -> str:
    """A token made the way add-node makes one."""
    return create(agent.paths, ttl, host_ips=lambda: []).token


def check_body(token: str, name: str = "worker-1", ip: str = "192.0.2.21",
               role: str = "worker") -> dict[str, Any]:
    return {"token": token, "name": name, "ip": ip, "role": role}


def assert_json_error(resp: Response, status: int, contains: str = "") -> str:
    """A 4xx whose body is exactly one line of JSON: {"error": "..."}."""
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers["content-type"].startswith("application/json")
    doc = json.loads(resp.body)
    assert list(doc) == ["error"] and isinstance(doc["error"], str)
    assert "\n" not in doc["error"] and doc["error"]
    assert contains in doc["error"]
    return str(doc["error"])


# --- the CA and TLS ---------------------------------------------------------------------


def test_ca_fingerprint_is_add_nodes_and_tls_trusts_only_that_ca(agent: Agent) -> None:
    proc = subprocess.run([sys.executable, "-m", "microkube", "add-node", "--format", "json"],
                          env=node_env(agent.paths.data.parent), capture_output=True, text=True,
                          timeout=60, check=True)
    pinned = json.loads(proc.stdout)["fingerprint"]
    # Like a joiner: fetch the CA without trusting anything, compare, then pin it.
    resp = Client(agent.port, unverified_context()).request("GET", "/v1/ca")
    assert resp.status == 200
    der = ssl.PEM_cert_to_DER_cert(resp.body.decode())
    assert hashlib.sha256(der).hexdigest() == pinned
    pinned_client = Client(agent.port, pinned_context(resp.body), "127.0.0.60")
    assert pinned_client.request("GET", "/v1/ca").body == resp.body
    # The serving certificate is a leaf of that CA naming the node's addresses.
    with socket.create_connection(("127.0.0.1", agent.port)) as sock, \
            pinned_context(resp.body).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        peer = tls.getpeercert(binary_form=True)
    assert peer is not None
    leaf = x509.load_der_x509_certificate(peer)
    assert is_issued_by(leaf, x509.load_pem_x509_certificate(resp.body))
    assert {str(ip) for ip in san_names(leaf)[1]} >= {"127.0.0.1", NODE_IP}


def test_tls_with_another_ca_fails(agent: Agent) -> None:
    other = ssl.create_default_context()  # the system's CAs, not the cluster's
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(agent.port, other, "127.0.0.61").request("GET", "/v1/ca")


# --- tokens ------------------------------------------------------------------------------


def test_a_good_token_is_accepted_and_reserved_for_its_joiner(agent: Agent) -> None:
    token = new_join_token(agent)
    client = agent.client()
    resp = client.post("/v1/join/check", check_body(token))
    assert resp.status == 200, resp.body
    doc = resp.json()
    assert doc["status"] == "reserved" and doc["role"] == "worker"
    assert doc["control_plane"] == {"name": NODE_NAME, "ip": NODE_IP}
    assert doc["cluster"] == {
        "service_cidr": "10.152.183.0/24", "pod_cidr": "10.1.0.0/16",
        "cluster_domain": "cluster.local", "dns_ip": "10.152.183.10", "api_port": 16443,
        "kubernetes_version": doc["cluster"]["kubernetes_version"]}
    assert str(doc["cluster"]["kubernetes_version"]).startswith("v1.")
    assert doc["reserved_until"] > time.time()
    # Reserved: another joiner is told who holds it; the same joiner may retry.
    other = client.post("/v1/join/check", check_body(token, "worker-2", "192.0.2.22"))
    assert_json_error(other, 409, "held by a join of node 'worker-1' (192.0.2.21)")
    assert client.post("/v1/join/check", check_body(token)).status == 200
    # Released (the join failed): usable again, by anyone.
    assert client.post("/v1/join/release", {"token": token}).json() == {"released": True}
    assert client.post("/v1/join/release", {"token": token}).json() == {"released": False}
    assert client.post("/v1/join/check", check_body(token, "worker-2", "192.0.2.22")).status == 200


def test_a_used_token_is_refused_with_the_reason(agent: Agent) -> None:
    token = new_join_token(agent)
    client = agent.client()
    assert client.post("/v1/join/check", check_body(token)).status == 200
    # The join completes (its handler comes next): the token is spent.
    TokenStore(agent.paths.cluster_tokens_file).consume(token, Holder("worker-1", "192.0.2.21"))
    resp = client.post("/v1/join/check", check_body(token, "worker-3", "192.0.2.23"))
    assert_json_error(resp, 409, "already used to join node 'worker-1'")


def test_an_expired_token_is_refused_with_the_reason(agent: Agent) -> None:
    token = new_join_token(agent, ttl=1)
    time.sleep(1.1)
    resp = agent.client().post("/v1/join/check", check_body(token))
    assert_json_error(resp, 401, "the token expired at")


def test_the_token_file_holds_only_hashes(agent: Agent) -> None:
    token = new_join_token(agent)
    assert agent.client().post("/v1/join/check", check_body(token)).status == 200
    assert token not in agent.paths.cluster_tokens_file.read_text()
    assert agent.paths.cluster_tokens_file.stat().st_mode & 0o777 == 0o600


def test_a_burst_of_bad_tokens_gets_429_and_another_source_still_joins(agent: Agent) -> None:
    guesser = agent.client("127.0.0.50")
    statuses = []
    for _ in range(20):
        resp = guesser.post("/v1/join/check", check_body(new_token()))
        statuses.append(resp.status)
        if resp.status == 429:
            assert_json_error(resp, 429, "too many refused tokens from 127.0.0.50")
            assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 15
    good = new_join_token(agent)
    # The guesser is held off even with a good token...
    assert guesser.post("/v1/join/check", check_body(good)).status == 429
    # ...while a joiner from another address gets in.
    resp = agent.client("127.0.0.51").post("/v1/join/check", check_body(good, "worker-9"))
    assert resp.status == 200, resp.body


# --- bad input: always a 4xx with one line of JSON -----------------------------------------


@pytest.mark.parametrize("method, path, body, status, contains", [
    ("GET", "/nope", None, 404, "no such endpoint: /nope"),
    ("GET", "/v1/join/check", None, 405, "GET is not allowed on /v1/join/check; use POST"),
    ("DELETE", "/v1/ca", None, 405, "use GET, HEAD"),
    ("POST", "/v1/join/check", b"", 400, "needs a JSON body"),
    ("POST", "/v1/join/check", b"{bad", 400, "not valid JSON"),
    ("POST", "/v1/join/check", b"\xff\xfe", 400, "not valid JSON"),
    ("POST", "/v1/join/check", b"[" * 50000 + b"]" * 50000, 413, "larger than"),
    ("POST", "/v1/join/check", b"[" * 30000 + b"]" * 30000, 400, "not valid JSON: nested too deeply"),
    ("POST", "/v1/join/check", b"[]", 400, "the body: [] is not of type 'object'"),
    ("POST", "/v1/join/check", b'{"token": 5, "name": "a", "ip": "192.0.2.1", "role": "worker"}',
     400, "token: 5 is not of type 'string'"),
    ("POST", "/v1/join/check", json.dumps(check_body("t" * 32, role="boss")).encode(), 400,
     "role: 'boss' is not one of"),
    ("POST", "/v1/join/check", json.dumps({**check_body("t" * 32), "x": 1}).encode(), 400,
     "Additional properties are not allowed"),
    ("POST", "/v1/join/check", json.dumps(check_body("t" * 32, name="Bad_Name")).encode(), 400,
     "is not a lowercase DNS name"),
    ("POST", "/v1/join/check", json.dumps(check_body("t" * 32, ip="300.1.1.1")).encode(), 400,
     "is not an IP address"),
    ("POST", "/v1/join/check", json.dumps(check_body("t" * 32, ip="127.0.0.1")).encode(), 400,
     "other nodes could not reach it"),
    ("POST", "/v1/join/check", json.dumps(check_body("t" * 5000)).encode(), 400,
     "token: is too long (at most 128 characters)"),
    ("POST", "/v1/join/release", b'{"token": null}', 400, "None is not of type 'string'"),
    ("POST", "/v1/join/check", b"1" * 5000, 400, "not valid JSON"),
])
def test_bad_requests_get_a_4xx_json_line(agent: Agent, method: str, path: str,
                                          body: bytes | None, status: int, contains: str) -> None:
    resp = agent.client().request(method, path, body)
    assert_json_error(resp, status, contains)


def test_an_unknown_expectation_gets_a_json_417_with_its_length(agent: Agent) -> None:
    resp = agent.client().request("GET", "/v1/ca", headers={"Expect": "text/html"})
    assert_json_error(resp, 417, "Expectation Failed")
    assert resp.headers["content-length"] == str(len(resp.body))


@pytest.mark.parametrize("expect", [
    b"Expect: 100-continue\r\nExpect: text/html\r\n",  # a second one is not ignored
    b"Expect: 100-Continue \r\n",  # one http.server would not answer with a 100
])
def test_only_one_exact_100_continue_is_an_expectation_met(agent: Agent, expect: bytes) -> None:
    reply = agent.client().raw(b"GET /v1/ca HTTP/1.1\r\nHost: a\r\n" + expect + b"\r\n")
    assert reply.startswith(b"HTTP/1.1 417 "), reply[:200]


def test_a_huge_body_is_refused_by_its_declared_length(agent: Agent) -> None:
    reply = agent.client().raw(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n"
                               b"Content-Length: 1000000000\r\n\r\n{")
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b'{"error": "the request body is larger than 65536 bytes"}' in reply


def test_a_chunked_body_is_refused_before_it_is_read(agent: Agent) -> None:
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
    reply = agent.client().raw(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 5)
    assert reply.startswith(b"HTTP/1.1 411 ")
    assert b"with a Content-Length" in reply


def test_a_self_join_is_refused(agent: Agent) -> None:
    token = new_join_token(agent)
    resp = agent.client().post("/v1/join/check", check_body(token, NODE_NAME, NODE_IP))
    assert_json_error(resp, 409, "a node cannot join itself")
    # Refused before the reservation: the token is still free.
    assert TokenStore(agent.paths.cluster_tokens_file).check(token).reserved_by is None


def test_a_slow_body_gets_408(agent: Agent) -> None:
    start = time.monotonic()
    reply = agent.client().raw(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n"
                               b"Content-Length: 100\r\n\r\n{\"tok", wait=10)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 1 s" in reply
    assert time.monotonic() - start < REQUEST_TIMEOUT + 5


def test_a_client_that_never_finishes_its_headers_is_disconnected(agent: Agent) -> None:
    start = time.monotonic()
    reply = agent.client().raw(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n", wait=15)
    assert reply == b""
    assert IDLE_TIMEOUT - 0.5 < time.monotonic() - start < IDLE_TIMEOUT + 5


def test_a_client_that_drips_its_headers_is_cut_off_all_the_same(agent: Agent) -> None:
    # Slowloris: a byte of header every 0.3 s; each byte must not restart the idle clock.
    sock = socket.create_connection(("127.0.0.1", agent.port), timeout=15)
    with pinned_context(agent.ca_pem).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        start, cut_after = time.monotonic(), None
        try:
            while time.monotonic() - start < 5 * IDLE_TIMEOUT:
                tls.sendall(b"a")  # fails once the agent has closed the connection
                time.sleep(0.3)
        except OSError:
            cut_after = time.monotonic() - start
    assert cut_after is not None and cut_after < IDLE_TIMEOUT + 5, cut_after


# Just past each limit, and small enough to arrive whole before the agent answers: a client
# still sending when the agent closes may see a reset instead of the answer.
@pytest.mark.parametrize("head, contains", [
    (b"GET /v1/ca HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n",
     "the request head is larger than 16384 bytes"),
    (b"GET /v1/ca HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
     "the request head has too many headers"),
])
def test_huge_heads_get_a_json_431(agent: Agent, head: bytes, contains: str) -> None:
    reply = agent.client().raw(head)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert contains in json.loads(reply.partition(b"\r\n\r\n")[2])["error"]


def test_a_tls_handshake_that_never_starts_is_cut_off(agent: Agent) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", agent.port), timeout=15) as sock:
        assert sock.recv(10) == b""
    assert time.monotonic() - start < REQUEST_TIMEOUT + 5


def test_a_request_that_is_not_http_gets_a_json_400(agent: Agent) -> None:
    reply = agent.client().raw(b"\x00\x01 hello\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"application/json" in head
    assert json.loads(body)["error"].startswith("malformed HTTP request")


@pytest.mark.parametrize("head, status, contains", [
    # urlsplit raises on a bracketed host that is no IPv6 address: was a traceback.
    (b"GET http://[x/v1/ca HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not a URL"),
    # Past int()'s 4300-digit limit: was a 500 with a traceback.
    (b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"0" * 5000 + b"2\r\n"
     b"\r\n{}", 400, "'token' is a required property"),
    (b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
     413, "larger than"),
])
def test_odd_targets_and_lengths_get_a_json_4xx(agent: Agent, head: bytes, status: int,
                                                contains: str) -> None:
    reply = agent.client().raw(head)
    assert reply.startswith(b"HTTP/1.1 %d " % status), reply[:200]
    assert contains in json.loads(reply.partition(b"\r\n\r\n")[2])["error"]
    assert "Traceback" not in agent.log.read_text()


def test_a_second_content_length_cannot_smuggle_a_request(agent: Agent) -> None:
    # Read by its first Content-Length (0), the body would be served as a request of its own.
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    reply = agent.client().raw(b"GET /v1/ca HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Length is not one number" in reply
    assert b"/smuggled" not in reply and "/smuggled" not in agent.log.read_text()


def test_a_client_that_never_reads_its_answers_is_cut_off(agent: Agent) -> None:
    # Pipelined requests whose answers are never read fill the socket buffers; a send
    # without a deadline would then hold the connection (and its thread) forever.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.79", 0))
    sock.settimeout(5)
    sock.connect(("127.0.0.1", agent.port))
    request = b"GET /v1/ca HTTP/1.1\r\nHost: a\r\n\r\n"
    sent = 0
    with pinned_context(agent.ca_pem).wrap_socket(sock, server_hostname="127.0.0.1") as tls:
        try:
            while sent < 20000:
                tls.sendall(request * 100)
                sent += 100
        except OSError:
            pass  # the agent stopped reading: what is sent is enough
        time.sleep(REQUEST_TIMEOUT + 2)  # the agent's send is cut off meanwhile
        answers = []
        try:
            while chunk := tls.recv(65536):
                answers.append(chunk)
        except OSError:
            pass  # cut off: no TLS close_notify
    served = b"".join(answers).count(b"HTTP/1.1 200 OK")
    assert 0 < served < sent, (served, sent)
    # The access log tells the answer that was cut off from those that were sent.
    cut = [line for line in agent.log.read_text().splitlines() if " 127.0.0.79 " in line]
    assert any('"GET /v1/ca HTTP/1.1" 200' in line and "(not delivered: " in line
               for line in cut), cut[-5:]


def test_one_source_cannot_hold_every_connection(agent: Agent) -> None:
    from microkube.cluster.httpserver import MAX_PER_SOURCE

    context = pinned_context(agent.ca_pem)
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(MAX_PER_SOURCE):  # each one idle, after its handshake
            sock = socket.create_connection(("127.0.0.1", agent.port), timeout=5,
                                            source_address=("127.0.0.77", 0))
            held.append(context.wrap_socket(sock, server_hostname="127.0.0.1"))
        sock = socket.create_connection(("127.0.0.1", agent.port), timeout=5,
                                        source_address=("127.0.0.77", 0))
        with pytest.raises(OSError):  # closed before its handshake
            context.wrap_socket(sock, server_hostname="127.0.0.1").close()
        sock.close()
        # Another source is served all the same, while those are still open.
        assert agent.client("127.0.0.78").request("GET", "/v1/ca").status == 200
    finally:
        for tls in held:
            tls.close()
    assert "connections from 127.0.0.77 are open already" in agent.log.read_text()


def test_stalled_connections_of_a_few_sources_cannot_lock_a_new_client_out(
        tmp_path: Path) -> None:
    """Every slot held by connections that send nothing more (after a POST head whose body
    never comes), from as few sources as the per-source cap allows: a new client evicts one
    of them and is served; a source that holds one connection never loses it to a source
    that holds more. (An agent of its own, whose deadlines outlast the opening of them.)"""
    from microkube.cluster.httpserver import MAX_CONNECTIONS, MAX_PER_SOURCE

    paths = prepare_node_root(tmp_path / "root", NODE_NAME, NODE_IP)
    with running_agent(paths, idle_timeout=60, request_timeout=60) as agent:
        context = pinned_context(agent.ca_pem)
        held: list[ssl.SSLSocket] = []

        def stall(source: str, body_pending: bool) -> ssl.SSLSocket:
            sock = socket.create_connection(("127.0.0.1", agent.port), timeout=5,
                                            source_address=(source, 0))
            tls = context.wrap_socket(sock, server_hostname="127.0.0.1")
            if body_pending:
                tls.sendall(b"POST /v1/join/check HTTP/1.1\r\nHost: a\r\n"
                            b"Content-Length: 100\r\n\r\n")
            held.append(tls)
            return tls

        def still_open(tls: ssl.SSLSocket) -> bool:
            tls.setblocking(False)
            try:
                return tls.recv(1) != b""
            except ssl.SSLWantReadError:
                return True  # nothing to read, no end of file

        try:
            lone = stall("127.0.2.9", body_pending=False)  # a source with one connection
            for n in range(MAX_CONNECTIONS - 1):
                stall(f"127.0.1.{n // MAX_PER_SOURCE + 1}", body_pending=True)
            time.sleep(0.5)  # every body is awaited
            assert agent.client("127.0.2.1").request("GET", "/v1/ca").status == 200
            time.sleep(0.5)
            assert [still_open(tls) for tls in held].count(False) == 1
            assert still_open(lone)
            stall("127.0.2.10", body_pending=False)  # the slot the evicted one gave back
            # A source that holds 15 opens its 16th: every waiting connection is of a source
            # that would then hold fewer, so it is refused, and the lone one is kept.
            with pytest.raises(OSError):
                stall(f"127.0.1.{MAX_CONNECTIONS // MAX_PER_SOURCE}", body_pending=False)
            assert still_open(lone)
            assert agent.client("127.0.2.2").request("GET", "/v1/ca").status == 200
        finally:
            for tls in held:
                tls.close()
        log = agent.log.read_text()
    assert log.count("evicted a waiting connection from 127.0.1.") == 2, log
    assert "evicted a waiting connection from 127.0.2." not in log, log
    assert "none of them waiting from a source that holds more than 16" in log, log


def test_an_agent_on_every_address_serves_ipv4_and_ipv6_clients(tmp_path: Path) -> None:
    """A node's agent listens on one dual-stack socket; an IPv4 client is named by its IPv4
    address (not ::ffff:127.0.0.1) in the log, as the node knows it."""
    paths = prepare_node_root(tmp_path / "root", NODE_NAME, NODE_IP)
    with running_agent(paths, bind_address=None) as agent:
        assert agent.client("127.0.0.1").request("GET", "/v1/ca").status == 200
        v6_context = pinned_context(agent.ca_pem)
        v6_context.check_hostname = False  # the agent's certificate names no ::1; CA checked
        v6 = Client(agent.port, v6_context, source="::1", host="::1")
        assert v6.request("GET", "/v1/ca").status == 200
        assert v6.request("GET", "/v1/nope").status == 404
        log = agent.log.read_text()
    assert '127.0.0.1 "GET /v1/ca HTTP/1.1" 200' in log, log
    assert '::1 "GET /v1/nope HTTP/1.1" 404' in log, log
    assert "::ffff:" not in log, log


def test_the_agent_is_still_up(agent: Agent) -> None:
    assert agent.alive()
    assert agent.client().request("GET", "/v1/ca").status == 200


def test_leave_needs_the_leaving_nodes_own_certificate(agent: Agent) -> None:
    from microkube.kube.api import client_pem

    body = {"name": "worker-1", "dry_run": True}
    assert_json_error(agent.client().post("/v1/leave", body), 401,
                      "needs the node's own kubelet client certificate")
    # The node's kubelet certificate (system:node:cp-1) proves cp-1, and nobody else.
    context = pinned_context(agent.ca_pem)
    context.load_cert_chain(str(client_pem(agent.paths.kubeconfig("kubelet"))))
    as_node = Client(agent.port, context, "127.0.0.251")
    assert_json_error(as_node.post("/v1/leave", body), 403,
                      f"the certificate is node {NODE_NAME}'s; it cannot take out worker-1")
    # Proven, it reaches the control plane, which has no API server in this test.
    resp = as_node.post("/v1/leave", {"name": NODE_NAME, "dry_run": True})
    assert resp.status == 503 and "cannot take cp-1 out now" in resp.json()["error"]
    # A malformed body is a 400, as everywhere.
    assert_json_error(agent.client().post("/v1/leave", {"name": 5}), 400, "name")


def test_a_renewal_needs_the_nodes_own_certificate_and_signs_nothing_for_others(
        agent: Agent) -> None:
    from microkube.kube.api import client_pem
    from microkube.pki.worker import worker_request

    csrs = worker_request("worker-1", "192.0.2.21", "worker-1", kinds=("kubelet",)).csrs
    assert_json_error(agent.client().post("/v1/certificates/worker", {"csrs": csrs}), 401,
                      "renewing certificates needs the node's own kubelet client certificate")
    context = pinned_context(agent.ca_pem)
    context.load_cert_chain(str(client_pem(agent.paths.kubeconfig("kubelet"))))
    as_node = Client(agent.port, context, "127.0.0.252")
    # Proven (cp-1), it must still be a Node; this test's control plane has no API server.
    resp = as_node.post("/v1/certificates/worker", {"csrs": csrs})
    assert resp.status == 503 and "does not answer" in resp.json()["error"]
    assert_json_error(as_node.post("/v1/certificates/worker", {"csrs": {}}), 400, "csrs")
    assert_json_error(as_node.post("/v1/certificates/worker", {"csrs": {"admin": "x"}}), 400,
                      "csrs")


def test_a_joiner_outside_the_version_skew_is_refused_in_one_line(agent: Agent) -> None:
    token = new_join_token(agent)
    client = agent.client()
    ours = client.post("/v1/join/check", check_body(token)).json()["cluster"]["kubernetes_version"]
    client.post("/v1/join/release", {"token": token})
    major, minor = (int(x) for x in ours.lstrip("v").split(".")[:2])
    newer = {**check_body(token), "kubernetes_version": f"v{major}.{minor + 1}.0"}
    assert_json_error(client.post("/v1/join/check", newer), 409, "may not be newer")
    far = {**check_body(token, role="control-plane"), "kubernetes_version": f"v{major}.{minor - 2}.0"}
    assert_json_error(client.post("/v1/join/check", far), 409, "at most 1 minor version apart")
    same = {**check_body(token), "kubernetes_version": ours}
    assert client.post("/v1/join/check", same).status == 200


def test_a_sqlite_control_plane_refuses_control_planes_before_they_discard_anything(
        tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root", NODE_NAME, NODE_IP, datastore="sqlite")
    with running_agent(paths) as sqlite_agent:
        token = new_join_token(sqlite_agent)
        client = sqlite_agent.client()
        # At the check, so a joiner has not yet discarded its own cluster when it is refused.
        line = assert_json_error(client.post("/v1/join/check",
                                             check_body(token, role="control-plane")), 409)
        assert line == ("this cluster keeps its state in sqlite on its control plane, which no "
                        "other control plane can share; join with --worker instead")
        body = {"token": token, "name": "worker-1", "ip": "192.0.2.21"}
        assert_json_error(client.post("/v1/join/control-plane", body), 409,
                          "join with --worker instead")
        # The token is untouched: a worker may still use it.
        assert client.post("/v1/join/check", check_body(token)).status == 200
