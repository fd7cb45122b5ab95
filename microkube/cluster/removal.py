"""Which Node object and datastore member a removal takes, and when to refuse it.

``remove-node NAME|IP`` and a node's ``leave`` both end here. The target is
looked up in the Node objects *and* the datastore's member list, by name or by
address, so a control plane whose Node is already gone, or a member left by a
join that never finished, is still found (MicroK8s's remove-node fails once
the Node is gone: canonical/microk8s #1828). Pure logic; the
:class:`~microkube.cluster.roster.Roster` carries it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from microkube.cluster.admission import node_addresses
from microkube.datastore.membership import Member
from microkube.errors import UsageError


class RemovalRefused(UsageError):
    """The node cannot be removed now; the message says why and what to do."""


class NotAMember(RemovalRefused):
    """Neither a Node nor a datastore member has that name or address."""


@dataclass(frozen=True)
class Removal:
    """What removing one node takes: its Node object's name and its datastore member, if any."""

    target: str  # as the user named it
    node_name: str | None
    member: Member | None

    @property
    def name(self) -> str:
        """The node's name: its Node's, else its member's, else the target as given."""
        return self.node_name or (self.member.name if self.member else "") or self.target

    def describe(self) -> str:
        """One line saying what goes: "the Node mk-w1 and the datastore member mk-w1"."""
        parts = []
        if self.node_name:
            parts.append(f"the Node {self.node_name}")
        if self.member:
            kind = "learner" if self.member.is_learner else "voting member"
            parts.append(f"the datastore {kind} {self.member.label}")
        return " and ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node_name,
                "member": None if self.member is None else self.member.label}


def _node_ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions)


def _name(node: Mapping[str, Any]) -> str:
    return str(node.get("metadata", {}).get("name", ""))


def find(target: str, nodes: Sequence[Mapping[str, Any]], members: Sequence[Member]) -> Removal:
    """The Node and member that ``target`` (a node name or IP address) names.

    A Node found by address brings the member of its name, and the other way round.
    Raises NotAMember when neither a Node nor a member matches.
    """
    node = next((n for n in nodes if _name(n) == target), None) \
        or next((n for n in nodes if target in node_addresses(n)), None)
    member = next((m for m in members if m.name and m.name == target), None) \
        or next((m for m in members if target == m.ip), None)
    if node is None and member is not None and member.name:
        node = next((n for n in nodes if _name(n) == member.name), None)
    if member is None and node is not None:
        member = next((m for m in members if m.name == _name(node)), None)
    if node is None and member is None:
        raise NotAMember(f"no node of this cluster is named or has the address {target}: "
                             "neither a Node nor a datastore member; "
                             "'microkube kubectl get nodes' lists the nodes")
    return Removal(target, _name(node) if node is not None else None, member)


def quorum_refusal(members: Sequence[Member], healthy: set[int], leaving: Member) -> str | None:
    """Why removing the voter ``leaving`` would stop the datastore, or None if it is safe.

    ``healthy`` holds the IDs of the voters that answer. Removing a learner is always safe.
    """
    if leaving.is_learner:
        return None
    rest = [m for m in members if not m.is_learner and m.id != leaving.id]
    if not rest:
        return (f"{leaving.label} is the datastore's only voting member: "
                "removing it would end the cluster")
    answering = sum(1 for m in rest if m.id in healthy)
    needed = len(rest) // 2 + 1
    if answering < needed:
        return (f"removing {leaving.label} would leave {len(rest)} voting "
                f"members of which only {answering} answer{'s' if answering == 1 else ''}, "
                f"fewer than the {needed} a quorum needs; bring the others back first")
    return None


def plan(target: str, nodes: Sequence[Mapping[str, Any]], members: Sequence[Member],
         healthy: set[int], this_node: str, force: bool) -> Removal:
    """What ``remove-node target [--force]`` run on the control plane ``this_node`` removes.

    Raises RemovalRefused (one line) for an unknown target, this node itself,
    a node that is still Ready without ``force``, or a voter whose removal
    would cost the datastore its quorum (even with ``force``).
    """
    removal = find(target, nodes, members)
    if removal.name == this_node:
        raise RemovalRefused(f"{removal.name} is this node; run 'microkube leave' to take it out "
                             "of the cluster")
    if not force and removal.node_name is not None:
        node = next(n for n in nodes if _name(n) == removal.node_name)
        if _node_ready(node):
            raise RemovalRefused(f"node {removal.node_name} is Ready: run 'microkube leave' on it "
                                 "first, or add --force to remove it anyway")
    return _checked(removal, members, healthy)


def plan_leave(name: str, nodes: Sequence[Mapping[str, Any]], members: Sequence[Member],
               healthy: set[int], this_node: str) -> Removal:
    """What a peer removes when node ``name`` leaves, asking the control plane ``this_node``.

    Raises NotAMember when ``name`` is not a member; RemovalRefused when it is this node itself
    (a control plane must ask another), or its leaving would cost the quorum.
    """
    if name == this_node:
        raise RemovalRefused(f"{name} is the control plane that was asked; a leaving control "
                             "plane asks another one")
    removal = find(name, nodes, members)
    if removal.name != name:
        raise NotAMember(f"{name} is not a member of this cluster")
    return _checked(removal, members, healthy)


def _checked(removal: Removal, members: Sequence[Member], healthy: set[int]) -> Removal:
    if removal.member is not None:
        why = quorum_refusal(members, healthy, removal.member)
        if why is not None:
            raise RemovalRefused(why)
    return removal
