"""Whether a join may discard the cluster a node runs on its own, and what the refusal names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microkube.cluster.owncluster import (
    check_discard,
    other_nodes,
    refuse_if_user_objects,
    system_namespaces,
    user_objects,
)
from microkube.config import node
from microkube.config.node import NodeConfig
from microkube.datastore.membership import Member, save_cache
from microkube.errors import UsageError
from tests.clusternode import prepare_node_root

ME = NodeConfig(node_name="mk-a", node_ip="10.0.0.2")


def obj(ns: str, name: str, owned: bool = False, labels: dict[str, str] | None = None
        ) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": ns, "name": name, "labels": labels or {}}
    if owned:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "x"}]
    return {"metadata": meta}


def member(id_: int, name: str, ip: str, learner: bool = False) -> Member:
    return Member(id_, name, (f"https://{ip}:12380",), (f"https://{ip}:12379",), learner)


def test_system_namespaces_are_the_fixed_ones_and_those_an_addon_made() -> None:
    found = system_namespaces([
        {"metadata": {"name": "ingress", "labels": {"app.kubernetes.io/managed-by": "microkube"}}},
        {"metadata": {"name": "default"}},
        {"metadata": {"name": "shop", "labels": {"app.kubernetes.io/managed-by": "helm"}}}])
    assert found == {"kube-system", "kube-public", "kube-node-lease", "ingress"}


def test_user_objects_are_workloads_outside_system_namespaces_and_every_claim() -> None:
    listings = {
        "deployment": [obj("default", "web"), obj("kube-system", "coredns"),
                       obj("ingress", "traefik")],
        "pod": [obj("default", "web-abc", owned=True), obj("default", "bare"),
                obj("kube-system", "static")],
        "daemonset": [obj("default", "agent",
                          labels={"app.kubernetes.io/managed-by": "microkube"})],
        "persistentvolumeclaim": [obj("container-registry", "registry-claim")],
    }
    found = user_objects(listings, {"kube-system", "ingress"})
    assert found == ["deployment default/web", "pod default/bare",
                     "persistentvolumeclaim container-registry/registry-claim"]
    assert user_objects({"deployment": [obj("kube-system", "coredns")]}, {"kube-system"}) == []


def test_other_nodes_are_members_and_nodes_that_are_not_this_one() -> None:
    assert other_nodes(ME, [member(1, "mk-a", "10.0.0.2")], ["mk-a"]) == []
    # A member that never started has no name: it is named by its address.
    assert other_nodes(ME, [member(1, "mk-a", "10.0.0.2"), member(2, "", "10.0.0.3", True)],
                       ["mk-a", "mk-w"]) == ["10.0.0.3", "mk-w"]


def test_a_refusal_names_the_first_objects_and_counts_the_rest() -> None:
    refuse_if_user_objects([])
    with pytest.raises(UsageError) as e:
        refuse_if_user_objects([f"pod default/p{i}" for i in range(7)])
    line = str(e.value)
    assert "pod default/p0, pod default/p1, pod default/p2, pod default/p3, pod default/p4 " \
           "and 2 more" in line
    assert "'microkube reset' first, or join with --force" in line
    assert "\n" not in line


def test_a_stopped_lone_node_is_discarded_only_with_force(tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root", "mk-a", "10.0.0.2")
    config = node.load(paths.state_file)
    with pytest.raises(UsageError, match="but it is stopped, so what it holds cannot be "
                                         "checked; start it"):
        check_discard(paths, config, force=False)
    assert "not checked for workloads, as it is stopped" in check_discard(paths, config, True)


def test_a_stopped_node_whose_last_member_list_names_others_is_refused_even_with_force(
        tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root", "mk-a", "10.0.0.2")
    save_cache(paths, [member(1, "mk-a", "10.0.0.2"), member(2, "mk-b", "10.0.0.3")])
    with pytest.raises(UsageError, match=r"a cluster with other nodes \(mk-b\); joining another "
                                         r"cluster would break it: run 'microkube leave' first"):
        check_discard(paths, node.load(paths.state_file), force=True)
