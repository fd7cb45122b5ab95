"""A refusal for an address or port someone else holds, told in the user's terms."""

from __future__ import annotations

from microkube.addons import conflicts

IP_TAKEN = ('applying dns failed: Error from server (Invalid): Service "kube-dns" is invalid: '
            'spec.clusterIPs: Invalid value: ["10.152.183.10"]: failed to allocate IP '
            '10.152.183.10: provided IP is already allocated')
PORT_TAKEN = ('applying registry failed: Service "registry" is invalid: spec.ports[0].nodePort: '
              'Invalid value: 32000: provided port is already allocated')
SERVICES = [
    {"metadata": {"name": "kubernetes", "namespace": "default"},
     "spec": {"clusterIP": "10.152.183.1", "clusterIPs": ["10.152.183.1"],
              "ports": [{"port": 443}]}},
    {"metadata": {"name": "squatter", "namespace": "shop"},
     "spec": {"clusterIP": "10.152.183.10", "clusterIPs": ["10.152.183.10"],
              "ports": [{"port": 80, "nodePort": 32000}]}},
]


def test_the_refused_object_and_what_it_needed_are_read_from_the_message() -> None:
    assert conflicts.taken(IP_TAKEN) == conflicts.Taken("Service", "kube-dns",
                                                        cluster_ip="10.152.183.10")
    assert conflicts.taken(PORT_TAKEN) == conflicts.Taken("Service", "registry", node_port=32000)
    assert conflicts.taken('Deployment "x" is invalid: spec.replicas: must be >= 0') is None


def test_the_holder_is_found_among_the_services() -> None:
    ip, port = conflicts.taken(IP_TAKEN), conflicts.taken(PORT_TAKEN)
    assert ip is not None and port is not None
    assert conflicts.holders(ip, SERVICES) == ["shop/squatter"]
    assert conflicts.holders(port, SERVICES) == ["shop/squatter"]
    assert conflicts.holders(conflicts.Taken("Service", "a", cluster_ip="10.0.0.9"), SERVICES) == []


def test_one_line_says_who_holds_it_and_what_to_do() -> None:
    want = conflicts.taken(PORT_TAKEN)
    assert want is not None
    line = conflicts.explain("registry", want, "container-registry", ["shop/squatter"])
    assert line == (
        "registry: Service container-registry/registry needs node port 32000, which Service "
        "shop/squatter holds; delete that Service ('microkube kubectl delete service -n shop "
        "squatter') or give it another port, then run 'microkube enable registry' again")
    nobody = conflicts.explain("registry", want, "container-registry", [])
    assert "already allocated, though no Service shows it" in nobody and "\n" not in nobody
