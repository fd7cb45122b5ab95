"""The cluster a node runs on its own, which ``join`` discards: may it, and what goes with it.

A node that was started runs a single-node cluster of its own (a freshly
installed snap does, as in MicroK8s, and so does a node after ``leave``). A
join may discard that cluster when it is only this node: one datastore member
(itself) and no other Node. It refuses, in one line and changing nothing:

- a control plane whose cluster has other members or Nodes (discarding it
  would break that cluster; ``microkube leave`` first), even with ``--force``;
- a node holding objects a user made: a workload outside the system
  namespaces (a Deployment, StatefulSet, DaemonSet, CronJob, or a Job or Pod
  no controller owns) or any PersistentVolumeClaim, unless ``--force``;
- a node that is stopped, or whose API server or datastore does not answer, as
  its objects cannot be listed, unless ``--force``. Starting it is not needed:
  with ``--force`` it is discarded unchecked, but still refused when the member
  list it last saw names other members.

System namespaces are kube-system, kube-public, kube-node-lease and those an
addon made (labelled ``app.kubernetes.io/managed-by: microkube``): enabling the
addon on the new cluster brings their workloads back. Volume claims are data,
so every one counts, an addon's too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from microkube.config.node import NodeConfig
from microkube.datastore.membership import Member
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import Paths

# What a user makes and a discard would lose: (kind, list path on the API server).
USER_KINDS = (
    ("deployment", "/apis/apps/v1/deployments"),
    ("statefulset", "/apis/apps/v1/statefulsets"),
    ("daemonset", "/apis/apps/v1/daemonsets"),
    ("cronjob", "/apis/batch/v1/cronjobs"),
    ("job", "/apis/batch/v1/jobs"),
    ("pod", "/api/v1/pods"),
    ("persistentvolumeclaim", "/api/v1/persistentvolumeclaims"),
)
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
MANAGED_BY = ("app.kubernetes.io/managed-by", "microkube")
# At most this many objects are named in a refusal; the rest are counted.
NAMED = 5

FORCE_HINT = "run 'microkube reset' first, or join with --force to discard them"


def system_namespaces(namespaces: Iterable[Mapping[str, Any]]) -> set[str]:
    """The fixed system namespaces and those an addon made, from Namespace objects."""
    key, value = MANAGED_BY
    made = {str(ns.get("metadata", {}).get("name", "")) for ns in namespaces
            if (ns.get("metadata", {}).get("labels") or {}).get(key) == value}
    return set(SYSTEM_NAMESPACES) | made


def user_objects(listings: Mapping[str, Sequence[Mapping[str, Any]]],
                 system: Iterable[str]) -> list[str]:
    """"kind namespace/name" of each object in ``listings`` (kind -> the list's items) a user
    made: every PersistentVolumeClaim, and the others outside ``system`` namespaces that no
    controller owns and microkube did not label as its own."""
    system = set(system)
    key, value = MANAGED_BY
    found = []
    for kind, items in listings.items():
        for item in items:
            meta = item.get("metadata", {})
            ns = str(meta.get("namespace", ""))
            if kind != "persistentvolumeclaim" and (
                    ns in system or meta.get("ownerReferences")
                    or (meta.get("labels") or {}).get(key) == value):
                continue
            found.append(f"{kind} {ns}/{meta.get('name', '')}")
    return found


def other_nodes(config: NodeConfig, members: Sequence[Member], node_names: Iterable[str]) -> list[str]:
    """Names (or addresses) of the datastore members and Nodes that are not this node, sorted."""
    others = {m.label for m in members if m.name != config.node_name and m.ip != config.node_ip}
    others |= {n for n in node_names if n and n != config.node_name}
    return sorted(others)


def refuse_if_shared(others: Sequence[str]) -> None:
    """UsageError if ``others`` (other members or Nodes of this node's cluster) is not empty."""
    if others:
        raise UsageError(f"this node is a control plane of a cluster with other nodes "
                         f"({', '.join(others)}); joining another cluster would break it: run "
                         "'microkube leave' first")


def refuse_if_user_objects(found: Sequence[str]) -> None:
    """UsageError naming the first few of ``found`` (objects a user made), if any."""
    if not found:
        return
    named = ", ".join(found[:NAMED])
    more = f" and {len(found) - NAMED} more" if len(found) > NAMED else ""
    raise UsageError(f"this node's own cluster holds what a user made, which joining would "
                     f"discard: {named}{more}; {FORCE_HINT}")


def _listing(api: Any, path: str) -> list[dict[str, Any]]:
    doc = api.get(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise MicrokubeError(f"the API server did not answer {path}")
    return list(doc["items"])


def survey(paths: Paths, config: NodeConfig) -> list[str]:
    """Ask this running control plane what discarding its cluster would lose; the objects a
    user made ("kind namespace/name"). UsageError when its cluster has other members or
    Nodes; MicrokubeError when its API server or datastore does not answer."""
    from microkube.cluster.roster import LocalRoster
    from microkube.kube.api import KubeApi

    roster = LocalRoster(paths)
    names = [str(n.get("metadata", {}).get("name", "")) for n in roster.nodes()]
    refuse_if_shared(other_nodes(config, roster.members(), names))
    api = KubeApi.for_admin(paths, timeout=5.0)
    system = system_namespaces(_listing(api, "/api/v1/namespaces"))
    return user_objects({kind: _listing(api, path) for kind, path in USER_KINDS}, system)


def check_discard(paths: Paths, config: NodeConfig, force: bool) -> str:
    """May a join discard the cluster this control plane runs on its own? What goes, as a
    phrase for a progress line. Raises UsageError (one line, nothing changed) when it may not
    (see the module doc)."""
    from microkube.datastore.membership import load_cache
    from microkube.node.runtime import runtime_for

    what = "its CA, certificates, datastore and settings"
    running = runtime_for(paths).is_running()
    found: list[str] = []
    unchecked = "it is stopped" if not running else ""
    if running:
        try:
            found = survey(paths, config)
        except UsageError:
            raise
        except MicrokubeError as e:
            unchecked = f"it does not answer ({e})"
    if unchecked:
        refuse_if_shared(other_nodes(config, load_cache(paths), []))
        if not force:
            raise UsageError(f"this node runs a cluster of its own, which joining would discard, "
                             f"but {unchecked}, so what it holds cannot be checked; start it "
                             "('microkube start', then 'microkube status --wait-ready') and "
                             "join again, or join with --force to discard it unchecked")
        return f"{what}; not checked for workloads, as {unchecked}"
    if not force:
        refuse_if_user_objects(found)
    if found:
        return f"{what}, and {len(found)} object{'s' if len(found) != 1 else ''} a user made " \
               f"({', '.join(found[:NAMED])}{' ...' if len(found) > NAMED else ''})"
    return what
