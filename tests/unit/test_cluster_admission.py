"""A worker's requests are signed only as what a worker may be; names and addresses in use are refused."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from microkube.cluster.admission import member_conflict, sign_worker_csrs
from microkube.pki.ca import create_ca
from microkube.pki.errors import CsrRefused
from microkube.pki.keys import new_key
from microkube.pki.worker import _csr, worker_request


def _subject(pem: str) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), orgs


def test_a_workers_requests_become_its_node_kube_proxy_and_flannel() -> None:
    ca = create_ca("test-ca")
    signed = sign_worker_csrs(ca, "w1", worker_request("w1", "10.0.0.3", "w1").csrs)
    assert _subject(signed["kubelet"]) == ("system:node:w1", ["system:nodes"])
    assert _subject(signed["kubelet-serving"]) == ("system:node:w1", ["system:nodes"])
    assert _subject(signed["kube-proxy"]) == ("system:kube-proxy", [])
    assert _subject(signed["flannel"]) == ("flannel", [])


@pytest.mark.parametrize("kind, cn, orgs", [
    ("kubelet", "system:node:other", ("system:nodes",)),  # another node's name
    ("kubelet", "system:node:w1", ("system:masters",)),
    ("kube-proxy", "admin", ("system:masters",)),
    ("flannel", "flannel", ("system:masters",)),
])
def test_a_request_for_more_than_a_worker_is_refused(kind: str, cn: str,
                                                      orgs: tuple[str, ...]) -> None:
    csrs = worker_request("w1", "10.0.0.3", "w1").csrs
    csrs[kind] = _csr(new_key(), cn, orgs)
    with pytest.raises(CsrRefused, match=f"^{kind}: "):
        sign_worker_csrs(create_ca("test-ca"), "w1", csrs)


def test_a_name_or_address_in_use_is_refused_with_the_remove_node_hint() -> None:
    nodes = [{"metadata": {"name": "cp"},
              "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}]
    assert member_conflict(nodes, "w1", "10.0.0.3") is None
    by_name = member_conflict(nodes, "cp", "10.0.0.9")
    assert by_name is not None and "microkube remove-node cp --force" in by_name
    by_ip = member_conflict(nodes, "w1", "10.0.0.2")
    assert by_ip is not None and "node cp already has the address 10.0.0.2" in by_ip
