"""A control plane whose address moved: its etcd member's peer URL follows it.

etcd keeps each member's peer URLs in the cluster's membership. A member that
restarts on a new address listens there, but the others still dial the old one;
etcd's documented fix is ``member update`` with the new URL, which a quorum of
voters must accept (etcd docs, "Update advertise peer URLs"). Who can accept it
decides when it is asked (:func:`plan`):

- This member is the only voter (a lone control plane, or one with standbys):
  it is its own quorum. It starts as usual (etcd ignores ``--initial-*`` flags
  once it has data, and publishes its new client URLs itself) and the update goes
  through its own etcd once it serves (:func:`update_local`, from etcd's
  ``after_ready``).
- Other voters exist: they hold the quorum, so they are asked before this member
  starts (:func:`update_through_others`). If none answers, the start is refused with
  one line that names the fix: nothing starts to crash-loop against a cluster that
  cannot hear it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from microkube.datastore.membership import (
    Member,
    Membership,
    MembershipError,
    load_cache,
    peer_url,
    save_cache,
    voters,
)
from microkube.errors import UsageError
from microkube.paths import Paths


class PeerMoveRefused(UsageError):
    """The other voters did not record this member's new peer URL; the node must not start."""


@dataclass(frozen=True)
class PeerFix:
    """``member``'s peer URLs must become ``url``; ``others`` are the other voters, who hold
    the quorum that accepts it (empty: ``member`` votes alone, or not at all with no voter)."""

    member: Member
    url: str
    others: tuple[Member, ...]

    def line(self) -> str:
        """One line for the user: which member's peer URL changed, from what to what."""
        old = ", ".join(self.member.peer_urls) or "none"
        return f"etcd member {self.member.label}: peer URL {old} -> {self.url}"


def plan(members: Sequence[Member], name: str, url: str) -> PeerFix | None:
    """The fix for member ``name`` (this node) to be reached at ``url``; None when its peer
    URLs already hold ``url`` or it is not a member (a worker, kine, a join not begun)."""
    me = next((m for m in members if m.name == name), None)
    if me is None or url in me.peer_urls:
        return None
    return PeerFix(me, url, tuple(m for m in voters(members) if m.id != me.id))


def own_peer_url(paths: Paths, node_ip: str) -> str:
    """This node's etcd peer URL at ``node_ip`` (what --initial-advertise-peer-urls says)."""
    return peer_url(node_ip, paths.ports.datastore_peer)


def update_through_others(paths: Paths, name: str, node_ip: str) -> PeerFix | None:
    """Before this member starts: when the member list last seen says other voters exist and
    this member's peer URL is not at ``node_ip``, have them record the new URL. The fix made,
    or None when none was due.

    Raises PeerMoveRefused (one line naming the fix) when no other voter accepts it.
    """
    url = own_peer_url(paths, node_ip)
    due = plan(load_cache(paths), name, url)
    if due is None or not due.others:
        return None
    endpoints = [u for m in due.others for u in m.client_urls[:1]]
    ms = dataclasses.replace(Membership.for_node(paths), endpoints=endpoints)
    try:
        fix = plan(ms.members(), name, url)  # the live list: someone may have fixed it already
        if fix is not None:
            ms.update_peer_urls(fix.member, [url])
        save_cache(paths, ms.members())
    except MembershipError as e:
        others = ", ".join(m.label for m in due.others)
        raise PeerMoveRefused(
            f"this control plane's address moved to {node_ip}, and the datastore's other "
            f"voters ({others}) did not record its new peer URL ({e}); start it again once "
            f"they are up, or run 'microkube remove-node {name} --force' on another control "
            "plane and join this node again") from None
    return fix


def update_local(paths: Paths, name: str, node_ip: str) -> PeerFix | None:
    """Once this member serves: record its peer URL at ``node_ip`` through its own etcd (which
    forwards to the leader; a lone voter is its own quorum). The fix made, or None.

    Raises MembershipError when etcd does not answer or refuses.
    """
    ms = Membership.for_node(paths)
    fix = plan(ms.members(), name, own_peer_url(paths, node_ip))
    if fix is not None:
        ms.update_peer_urls(fix.member, [fix.url])
        save_cache(paths, ms.members())
    return fix
