"""Who is in the cluster, as a control plane sees it, and taking a node out.

A :class:`Roster` reads the Node objects (through the API server, as admin)
and the datastore's members (through etcdctl), and removes either. The cluster
agent uses one to undo failed joins and to remove a leaving node;
``remove-node`` uses one directly on the control plane it runs on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from microkube.cluster.removal import Removal
from microkube.datastore.membership import Member
from microkube.errors import MicrokubeError
from microkube.paths import Paths

if TYPE_CHECKING:
    # cryptography: the agent loads it only when a join is signed.
    from microkube.pki.ca import CertificateAuthority

log = logging.getLogger("microkube.cluster.roster")

# Seconds of clock difference tolerated when telling a Node made by a join from an older one.
CREATION_SLACK = 5.0


class Roster(Protocol):
    """The cluster's members as one control plane sees them. Every method raises
    MicrokubeError when the API server or the datastore does not answer."""

    def nodes(self) -> list[dict[str, Any]]:
        """Every Node object."""

    def delete_node(self, name: str, created_after: float | None = None) -> bool:
        """Delete Node ``name``; with ``created_after`` (epoch seconds) only one made since then.

        Returns False if there was none (to delete).
        """

    def members(self) -> list[Member]:
        """Every datastore member, voters and learners."""

    def healthy_voters(self, members: list[Member]) -> set[int]:
        """IDs of the voting members in ``members`` that answer."""

    def remove_member(self, member: Member) -> None:
        """Take ``member`` out of the datastore."""


def created_at(node: dict[str, Any]) -> float | None:
    """A Node's creationTimestamp as epoch seconds; None if it has none that parses."""
    stamp = node.get("metadata", {}).get("creationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class LocalRoster:
    """The :class:`Roster` of the control plane under ``paths``: its API server and etcd member."""

    def __init__(self, paths: Paths, timeout: float = 5.0) -> None:
        self.paths = paths
        self.timeout = timeout  # seconds per API request

    def _api(self) -> Any:
        from microkube.kube.api import KubeApi

        return KubeApi.for_admin(self.paths, timeout=self.timeout)

    def _membership(self) -> Any:
        from microkube.datastore.membership import Membership

        return Membership.for_node(self.paths)

    def nodes(self) -> list[dict[str, Any]]:
        doc = self._api().get("/api/v1/nodes")
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise MicrokubeError("the API server did not list the cluster's nodes")
        return list(doc["items"])

    def delete_node(self, name: str, created_after: float | None = None) -> bool:
        api = self._api()
        if created_after is not None:
            node = api.get(f"/api/v1/nodes/{name}")
            if not isinstance(node, dict):
                if api.status_code(f"/api/v1/nodes/{name}") == 404:
                    return False
                raise MicrokubeError(f"the API server did not answer for the Node {name}")
            made = created_at(node)
            if made is not None and made < created_after - CREATION_SLACK:
                log.warning("Node %s is older than the join being undone; it is kept", name)
                return False
        status = api.delete(f"/api/v1/nodes/{name}")
        if status == 404:
            return False
        if status not in (200, 202):
            raise MicrokubeError(f"the API server did not delete the Node {name} "
                                 f"({'no answer' if status == 0 else f'HTTP {status}'})")
        return True

    def members(self) -> list[Member]:
        from microkube.config import node
        from microkube.datastore.settings import ETCD

        if node.load(self.paths.state_file, self.paths.yaml_cache_dir).datastore != ETCD:
            return []  # kine or an external store: no member of it is any node's
        members: list[Member] = self._membership().members()
        return members

    def healthy_voters(self, members: list[Member]) -> set[int]:
        from microkube.datastore.membership import MembershipError, voters

        membership = self._membership()
        healthy = set()
        for m in voters(members):
            try:
                membership.status(m.client_urls[0] if m.client_urls else "")
            except (MembershipError, IndexError, ValueError):
                continue
            healthy.add(m.id)
        return healthy

    def remove_member(self, member: Member) -> None:
        membership = self._membership()
        membership.remove(member)
        if member.name:
            # Else a node that joins again under this name would be promoted before its
            # join completes (cluster/ha.py promotes only completed joins).
            membership.forget_joined(member.name)


@dataclass(frozen=True)
class ControlPlane:
    """What the agent needs of the control plane it runs on to admit and remove nodes.

    ``ca`` loads the cluster CA (key included) for one join; ``roster`` lists
    and removes Nodes and datastore members; ``api_server`` is the URL workers
    reach the API server at. For a joining control plane (cluster/controlplane.py):
    ``shared`` reads the files every control plane shares, ``add_learner(name, ip)``
    adds its etcd learner, and ``completed(name, ip)`` marks a completed join so
    its learner may be promoted (both on etcd only); ``datastore`` reads the external
    store every control plane shares (on an external store only).
    """

    ca: Callable[[], CertificateAuthority]
    roster: Roster
    api_server: str
    shared: Callable[[], dict[str, str]] | None = None
    add_learner: Callable[[str, str], dict[str, Any]] | None = None
    completed: Callable[[str, str], None] | None = None
    datastore: Callable[[], dict[str, Any]] | None = None


def carry_out(roster: Roster, removal: Removal, progress: Callable[[str], None]) -> None:
    """Remove ``removal``'s datastore member, then its Node. MicrokubeError if either fails."""
    if removal.member is not None:
        roster.remove_member(removal.member)
        progress(f"removed the datastore member {removal.member.label}")
    if removal.node_name is not None and roster.delete_node(removal.node_name):
        progress(f"deleted the Node {removal.node_name}")


def undo_admission(roster: Roster, name: str, ip: str, admitted_at: float) -> list[str]:
    """Take out what a join of node ``name`` at ``ip``, admitted at ``admitted_at`` (epoch s),
    added before it failed: the Node its kubelet registered since then, and a datastore member
    of its name or address that is still a learner (a control plane's). Returns what went, as
    phrases; MicrokubeError when the API server or the datastore does not answer.
    """
    gone = []
    members = [m for m in roster.members() if m.is_learner and (m.name == name or m.ip == ip)]
    for member in members:
        roster.remove_member(member)
        gone.append(f"the datastore learner {member.label}")
    if roster.delete_node(name, created_after=admitted_at):
        gone.append(f"the Node {name}")
    return gone


def remove_node(paths: Paths, target: str, force: bool,
                progress: Callable[[str], None]) -> Removal:
    """``remove-node target [--force]`` on the control plane under ``paths``; what was removed.

    Raises UsageError on a worker, NotRunningError when the API server does
    not answer, RemovalRefused (one line, nothing changed) for an unknown
    target, this node, a Ready node without ``force`` or a quorum that would
    be lost, MicrokubeError when the datastore or the API server fails midway.
    """
    from microkube.cluster.removal import plan
    from microkube.config import node
    from microkube.errors import UsageError
    from microkube.node.guard import require_api_answering, require_set_up

    if not target.strip():
        raise UsageError("remove-node needs a node's name or IP address, not an empty one")
    require_set_up(paths)
    config = node.load(paths.state_file)
    if config.is_worker:
        raise UsageError("remove-node runs on a control plane; this node is a worker "
                         "('microkube leave' takes it out of its cluster)")
    require_api_answering(paths)
    roster = LocalRoster(paths)
    members = roster.members()
    removal = plan(target, roster.nodes(), members, roster.healthy_voters(members),
                   config.node_name, force)
    carry_out(roster, removal, progress)
    return removal
