"""The datastore's member list, read and changed with etcdctl on a control plane.

Only what removing a node needs: list the members (voters and learners), ask
which voters answer, and remove one. Adding and promoting members belongs to
the control-plane join.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from microkube.datastore.etcdtools import EtcdToolError, EtcdTools


@dataclass(frozen=True)
class Member:
    """One etcd member: its ID, name (the node's), peer and client URLs, and whether it votes."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        """The ID as etcdctl writes and takes it (hexadecimal)."""
        return format(self.id, "x")

    @property
    def addresses(self) -> set[str]:
        """The hosts of its peer and client URLs (IP addresses, without brackets)."""
        return {urlsplit(u).hostname or "" for u in (*self.peer_urls, *self.client_urls)} - {""}


def parse_member_list(doc: Any) -> list[Member]:
    """Members from ``etcdctl member list -w json``; EtcdToolError for another shape.

    A member added but never started has no name yet: it is listed with "".
    """
    try:
        return [Member(id=int(m["ID"]), name=str(m.get("name") or ""),
                       peer_urls=tuple(m.get("peerURLs") or ()),
                       client_urls=tuple(m.get("clientURLs") or ()),
                       is_learner=bool(m.get("isLearner", False)))
                for m in doc["members"]]
    except (KeyError, TypeError, ValueError) as e:
        raise EtcdToolError(f"etcdctl's member list is not what it should be ({e})") from None


def parse_endpoint_health(doc: Any) -> dict[str, bool]:
    """Each client URL's health from ``etcdctl endpoint health -w json``."""
    if not isinstance(doc, list):
        raise EtcdToolError("etcdctl's endpoint health is not a list")
    return {str(e.get("endpoint", "")): bool(e.get("health")) for e in doc if isinstance(e, dict)}


def list_members(tools: EtcdTools) -> list[Member]:
    """Every member of the live datastore. EtcdToolError if etcd does not answer."""
    out = tools.etcdctl(["member", "list", "-w", "json"], "listing the datastore's members",
                        timeout=15)
    try:
        return parse_member_list(json.loads(out))
    except ValueError:
        raise EtcdToolError("etcdctl's member list is not JSON") from None


def healthy_voters(tools: EtcdTools, members: list[Member]) -> set[int]:
    """IDs of the voting members whose client URL answers a health check within a few seconds."""
    voters = [m for m in members if not m.is_learner and m.client_urls]
    if not voters:
        return set()
    endpoints = ",".join(m.client_urls[0] for m in voters)
    try:
        # etcdctl exits non-zero when any endpoint is unhealthy, yet prints every result.
        out = tools.etcdctl(["endpoint", "health", f"--endpoints={endpoints}",
                             "--command-timeout=3s", "-w", "json"],
                            "asking the datastore's members for their health", timeout=20)
        health = parse_endpoint_health(json.loads(out))
    except EtcdToolError:
        health = {m.client_urls[0]: _one_healthy(tools, m.client_urls[0]) for m in voters}
    except ValueError:
        raise EtcdToolError("etcdctl's endpoint health is not JSON") from None
    return {m.id for m in voters if health.get(m.client_urls[0], False)}


def _one_healthy(tools: EtcdTools, url: str) -> bool:
    try:
        tools.etcdctl(["endpoint", "health", f"--endpoints={url}", "--command-timeout=3s"],
                      f"asking {url} for its health", timeout=10)
    except EtcdToolError:
        return False
    return True


def remove_member(tools: EtcdTools, member: Member) -> None:
    """Remove ``member`` from the datastore. EtcdToolError if etcd refuses (e.g. no quorum)."""
    tools.etcdctl(["member", "remove", member.hex_id],
                  f"removing the datastore member {member.name or member.hex_id}", timeout=30)
