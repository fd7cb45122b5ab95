"""dns and ingress on a real node: names resolve, HTTP routes, disable cleans up.

CoreDNS forwards only to a resolver this test runs inside the node's network
namespace; nothing ever reaches the machine's own resolver. Tests run in file
order on one node of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import yaml

from microkube.images.names import BUSYBOX_IMAGE
from tests.e2e.addon_support import (
    DnsResponder,
    addon_node,
    addon_state,
    assert_all_gone,
    http_get,
    one_line_error,
    require_node_and_images,
    status_addons,
)
from tests.testnode import TestNode
from tests.workloads import web_deployment

pytestmark = pytest.mark.e2e

UPSTREAM_NAME = "upstream.example.test"
UPSTREAM_ADDRESS = "192.0.2.53"

WEB = web_deployment("web", "hello through the ingress") + f"""
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web}}
spec:
  rules:
  - host: web.example.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: web, port: {{number: 80}}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: [sleep, "100000"]
"""


WEB_TWO = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web-two}
spec:
  rules:
  - host: two.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    require_node_and_images("coredns", "traefik")
    yield from addon_node(tmp_path_factory, "net")


def test_unknown_addon_and_bad_arguments_change_nothing(node: TestNode) -> None:
    line = one_line_error(node.run("enable", "dsn", check=False))
    assert "unknown addon 'dsn'; did you mean 'dns'?" in line
    for args, expected in ((["dns:10.0.0"], "'10.0.0' is not an IP address"),
                           (["dns", "--upstream"], "--upstream needs a value"),
                           (["ingress", "dns", "--colour", "red"], "unknown option --colour"),
                           (["ingress", "--default-ssl-certificate", "nope/missing"],
                            "secret nope/missing does not exist")):
        line = one_line_error(node.run("enable", *args, check=False))
        assert expected in line, line
    assert not node.kubectl("get", "deployment/coredns", "-n", "kube-system",
                            "--ignore-not-found", "-o", "name").strip()
    assert not node.kubectl("get", "namespace/ingress", "--ignore-not-found", "-o", "name").strip()
    assert addon_state(node) == {}
    assert "dns" in status_addons(node)["disabled"]


def test_dns_resolves_services_and_upstream_names(node: TestNode) -> None:
    node.apply(WEB)
    with DnsResponder(node, {UPSTREAM_NAME: UPSTREAM_ADDRESS}) as upstream:
        out = node.run("enable", f"dns:{node.ip}").stdout
        assert "enabling dns…" in out and "ready in" in out, out
        assert "dns" in status_addons(node)["enabled"]
        node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
        # The client was made before dns: ask the cluster DNS address directly. kube-proxy
        # routes it once it has seen CoreDNS's endpoints, a moment after the rollout; until
        # then the address rejects (connection refused).
        svc = node.wait_for("the cluster DNS address to answer", lambda: node.kubectl(
            "exec", "client", "--", "nslookup", "web.default.svc.cluster.local", "10.152.183.10"),
            timeout=60)
        cluster_ip = node.kubectl("get", "service", "web", "-o",
                                  "jsonpath={.spec.clusterIP}").strip()
        assert cluster_ip in svc, svc
        ext = node.kubectl("exec", "client", "--", "nslookup", UPSTREAM_NAME, "10.152.183.10")
        assert UPSTREAM_ADDRESS in ext, ext
        assert UPSTREAM_NAME in upstream.queries()
    # New pods get the cluster DNS from the kubelet.
    node.kubectl("delete", "pod", "client", "--wait=true")
    node.apply(WEB)
    node.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=120s", timeout=150)
    resolv = node.kubectl("exec", "client", "--", "cat", "/etc/resolv.conf")
    assert "nameserver 10.152.183.10" in resolv and "svc.cluster.local" in resolv
    # busybox's nslookup tries every search domain and exits 1 when any of them fails.
    short = node.run("kubectl", "exec", "client", "--", "nslookup", "web", check=False).stdout
    assert "Name:\tweb.default.svc.cluster.local\nAddress: " + cluster_ip in short, short


def test_enabling_twice_is_harmless(node: TestNode) -> None:
    before = addon_state(node)["core/dns"]
    out = node.run("enable", "dns").stdout  # how long it takes: `make bench` (reenable_s)
    assert out.strip() == "dns is already enabled"
    assert addon_state(node)["core/dns"] == before


def _wait_http(node: TestNode, url: str, host: str, want: str, timeout: float = 60) -> None:
    def routed() -> bool:
        status, body = http_get(node, url, host=host)
        return status == 200 and want in body

    node.wait_for(f"{url} (Host {host}) to answer", routed, timeout=timeout, every=0.5)


def test_ingress_routes_http_and_https(node: TestNode) -> None:
    node.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    out = node.run("enable", "ingress").stdout
    assert "ready in" in out, out
    _wait_http(node, f"http://{node.ip}/", "web.example.test", "hello through the ingress")
    status, _ = http_get(node, f"http://{node.ip}/", host="nobody.example.test")
    assert status == 404
    _wait_http(node, f"https://{node.ip}/", "web.example.test", "hello through the ingress")
    assert node.run("enable", "ingress").stdout.strip() == "ingress is already enabled"
    # An Ingress made now gets the default class, 'public', filled in.
    node.apply(WEB_TWO)
    assert node.kubectl_json("get", "ingress", "web-two")["spec"]["ingressClassName"] == "public"
    _wait_http(node, f"http://{node.ip}/", "two.example.test", "hello through the ingress")


def _tls_secret(node: TestNode, name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "default.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    crt = cert.public_bytes(serialization.Encoding.PEM).decode()
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    node.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                               "metadata": {"name": name, "namespace": "default"},
                               "stringData": {"tls.crt": crt, "tls.key": pem_key}}))


def test_ingress_default_ssl_certificate(node: TestNode) -> None:
    _tls_secret(node, "site-tls")
    line = one_line_error(node.run("enable", "ingress", "--default-ssl-certificate",
                                   "default/web", check=False))
    assert "does not exist" in line
    out = node.run("enable", "ingress", "--default-ssl-certificate", "default/site-tls").stdout
    assert out.startswith("reconfiguring ingress…"), out

    def served_cn() -> str:
        code = f"""
import socket, ssl
ctx = ssl._create_unverified_context()
with socket.create_connection(({node.ip!r}, 443), timeout=5) as s:
    with ctx.wrap_socket(s, server_hostname="web.example.test") as t:
        der = t.getpeercert(binary_form=True)
from cryptography import x509
print(x509.load_der_x509_certificate(der).subject.rfc4514_string())
"""
        from tests.e2e.addon_support import in_node_python

        return in_node_python(node, code).strip()

    node.wait_for("the default certificate", lambda: served_cn() == "CN=default.example.test",
                  timeout=60, every=1)


def test_disable_removes_what_enable_made(node: TestNode) -> None:
    state = addon_state(node)
    ingress_objects = state["core/ingress"]["objects"]
    dns_objects = state["core/dns"]["objects"]
    out = node.run("disable", "ingress", "dns").stdout
    assert "disabling ingress…" in out and "disabling dns…" in out
    assert_all_gone(node, ingress_objects)
    assert_all_gone(node, dns_objects)
    kubelet = yaml.safe_load((node.root / "data" / "args" / "kubelet.yaml").read_text())
    assert "clusterDNS" not in kubelet
    assert addon_state(node) == {}
    st = status_addons(node)
    assert "dns" in st["disabled"] and "ingress" in st["disabled"]
    assert node.run("disable", "dns").stdout.strip() == "dns is not enabled"
    assert not node.kubectl("get", "pods", "-n", "ingress", "-o", "name").strip()
