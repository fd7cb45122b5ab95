"""The etcd cluster's membership: list, add as a learner, promote, remove; and the HA rule.

Everything goes through etcd's gRPC gateway (JSON over the client port, with
the API server's etcd client certificate), so a look costs one HTTPS request
and no process: ``microkube status`` stays fast.

A learner answers only ``status`` and serializable reads: the member list,
additions and promotions must be asked of a voter. :class:`Membership` tries
the endpoints it was given in order and uses the first voter that answers.

The HA rule (:func:`wanted_voters`, :func:`promotions`): one voter until the
cluster has three members, then three voters; members beyond that are
standbys (learners). Two voters would be worse than one, since losing either
stops the cluster. Nothing is added or promoted while a voter is down
(:meth:`Membership.unhealthy_voters`).

The last member list this node saw is cached in ``var/etcd-members.json``
(:func:`save_cache`, :func:`load_cache`): a learner finds the voters there,
and the API server's ``--etcd-servers`` (:func:`etcd_servers`) is computed from
it at each start: the loopback member when this node votes, else every voter.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic
from microkube.paths import Paths

HA_VOTERS = 3
# Seconds one request to a member may take.
REQUEST_TIMEOUT = 2.0
# etcd's answer to a promotion of a learner that has not caught up with the leader yet.
NOT_IN_SYNC = "in sync with leader"


class MembershipError(MicrokubeError):
    """No voter answered, or etcd refused a membership change (its one-line reason)."""


@dataclass(frozen=True)
class Member:
    """One etcd member. ``name`` is empty until the member started once; ``id`` is etcd's
    64-bit member ID."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Member:
        """From the gateway's JSON (``ID`` is a decimal string there); KeyError/ValueError if malformed."""
        return cls(int(raw["ID"]), str(raw.get("name", "")),
                   tuple(raw.get("peerURLs") or ()), tuple(raw.get("clientURLs") or ()),
                   bool(raw.get("isLearner", False)))

    def to_json(self) -> dict[str, Any]:
        """The gateway's JSON shape, so :meth:`from_json` reads it back."""
        return {"ID": str(self.id), "name": self.name, "peerURLs": list(self.peer_urls),
                "clientURLs": list(self.client_urls), "isLearner": self.is_learner}

    @property
    def ip(self) -> str:
        """The host of its first peer URL (an IP address in microkube), "" if it has none."""
        if not self.peer_urls:
            return ""
        return urlsplit(self.peer_urls[0]).hostname or ""

    @property
    def label(self) -> str:
        """Its name, or its address for a member that never started."""
        return self.name or self.ip or f"{self.id:x}"


def voters(members: Iterable[Member]) -> list[Member]:
    """The voting members, by name."""
    return sorted((m for m in members if not m.is_learner), key=lambda m: m.label)


def standbys(members: Iterable[Member]) -> list[Member]:
    """The learners (standby control planes), by name."""
    return sorted((m for m in members if m.is_learner), key=lambda m: m.label)


def wanted_voters(member_count: int) -> int:
    """How many of ``member_count`` members should vote: 1 below three members, else three."""
    return HA_VOTERS if member_count >= HA_VOTERS else min(1, member_count)


def promotions(members: Sequence[Member], joined: Collection[str] | None = None) -> list[Member]:
    """The learners to promote, in order, so the voters reach :func:`wanted_voters`.

    Learners that never started (no name) are not candidates: they cannot have caught up;
    nor, when ``joined`` is given, those whose join has not completed (not in it), so a
    join that fails leaves no voter behind.
    """
    missing = wanted_voters(len(members)) - len(voters(members))
    started = [m for m in standbys(members) if m.name and (joined is None or m.name in joined)]
    return started[:max(0, missing)]


def high_availability(members: Sequence[Member]) -> bool:
    """True when at least three members vote: the loss of any one keeps a quorum."""
    return len(voters(members)) >= HA_VOTERS


def peer_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"https://{host}:{port}"


def initial_cluster(members: Sequence[Member], name: str, own_peer_url: str) -> str:
    """etcd's ``--initial-cluster`` for a new member ``name`` at ``own_peer_url`` joining
    ``members`` (which include it, not yet named)."""
    entries = [f"{name}={own_peer_url}"]
    entries += [f"{m.name}={url}" for m in members if m.name and m.name != name
                for url in m.peer_urls[:1]]
    return ",".join(entries)


# --- the gateway ------------------------------------------------------------------------


@dataclass
class Membership:
    """Membership requests to etcd at ``endpoints`` (client URLs, tried in order), with TLS
    ``context`` (the etcd CA and a client certificate)."""

    endpoints: Sequence[str]
    context: ssl.SSLContext
    timeout: float = REQUEST_TIMEOUT

    @classmethod
    def for_node(cls, paths: Paths, extra: Iterable[str] = (),
                 timeout: float = REQUEST_TIMEOUT) -> Membership:
        """This node's local member first, then ``extra``, then the voters it last saw
        (cache). Uses the API server's etcd client certificate."""
        from microkube.probes import tls_context

        pki = paths.pki
        context = tls_context(pki.etcd_ca.cert, pki.etcd_apiserver_client.cert,
                              pki.etcd_apiserver_client.key)
        cached = [url for m in voters(load_cache(paths)) for url in m.client_urls]
        endpoints = [local_url(paths), *extra, *cached]
        return cls(list(dict.fromkeys(endpoints)), context, timeout)

    def call(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the gateway's ``path`` at ``endpoint``; the JSON answer.

        Raises MembershipError with etcd's message for a refusal, or why nothing answered.
        """
        from microkube.probes import http_exchange

        try:
            status, raw = http_exchange(
                "POST", endpoint.rstrip("/") + path, json.dumps(body).encode(),
                content_type="application/json", context=self.context, timeout=self.timeout)
        except (OSError, ValueError) as e:
            raise MembershipError(f"etcd at {endpoint} does not answer: {e}") from None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise MembershipError(f"etcd at {endpoint} answered HTTP {status}, "
                                  "not JSON") from None
        if status != 200 or not isinstance(doc, dict):
            message = doc.get("message") if isinstance(doc, dict) else None
            raise MembershipError(str(message or f"etcd at {endpoint}: HTTP {status}"))
        return doc

    def _first_voter(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The first endpoint's answer that is not a learner's refusal."""
        errors = []
        for endpoint in self.endpoints:
            try:
                return self.call(endpoint, path, body)
            except MembershipError as e:
                errors.append(str(e))
        raise MembershipError("no etcd voter answered: " + "; ".join(errors))

    def members(self) -> list[Member]:
        """The cluster's members, from the first voter that answers."""
        doc = self._first_voter("/v3/cluster/member/list", {"linearizable": True})
        try:
            return [Member.from_json(m) for m in doc.get("members") or []]
        except (KeyError, ValueError, TypeError):
            raise MembershipError("etcd's member list is malformed") from None

    def status(self, endpoint: str) -> dict[str, Any]:
        """One member's status (``leader``, ``raftIndex``, ``isLearner``, ``header.member_id``)."""
        return self.call(endpoint, "/v3/maintenance/status", {})

    def unhealthy_voters(self, members: Sequence[Member]) -> list[str]:
        """One line per voter that does not answer its status request (empty: all answer)."""
        down = []
        for m in voters(members):
            try:
                self.status(m.client_urls[0] if m.client_urls else "")
            except (MembershipError, IndexError):
                down.append(f"{m.label} ({m.client_urls[0] if m.client_urls else 'no client URL'})")
        return down

    def add_learner(self, peer: str) -> tuple[Member, list[Member]]:
        """Add a learner at the peer URL ``peer``; (the new member, every member after)."""
        doc = self._first_voter("/v3/cluster/member/add",
                                {"peerURLs": [peer], "isLearner": True})
        try:
            return (Member.from_json(doc["member"]),
                    [Member.from_json(m) for m in doc.get("members") or []])
        except (KeyError, ValueError, TypeError):
            raise MembershipError("etcd's answer to the member addition is malformed") from None

    def promote(self, member: Member) -> None:
        """Make a learner a voter; MembershipError (with NOT_IN_SYNC) while it lags behind."""
        self._first_voter("/v3/cluster/member/promote", {"ID": str(member.id)})

    def update_peer_urls(self, member: Member, urls: Sequence[str]) -> None:
        """Record new peer URLs for ``member`` (its address moved); goes through a quorum."""
        self._first_voter("/v3/cluster/member/update",
                          {"ID": str(member.id), "peerURLs": list(urls)})

    def remove(self, member: Member) -> None:
        """Remove a member for good."""
        self._first_voter("/v3/cluster/member/remove", {"ID": str(member.id)})

    # The names of control planes whose join completed, as keys in etcd itself, so any
    # node's reconciler knows which learners it may promote.
    def mark_joined(self, name: str) -> None:
        """Record that control plane ``name`` completed its join."""
        self._first_voter("/v3/kv/put", {"key": _b64(JOINED_PREFIX + name), "value": _b64("1")})

    def forget_joined(self, name: str) -> None:
        """Drop ``name``'s record (it left or was removed)."""
        self._first_voter("/v3/kv/deleterange", {"key": _b64(JOINED_PREFIX + name)})

    def joined(self) -> set[str]:
        """The names of the control planes whose join completed."""
        end = JOINED_PREFIX[:-1] + chr(ord(JOINED_PREFIX[-1]) + 1)
        doc = self._first_voter("/v3/kv/range", {"key": _b64(JOINED_PREFIX),
                                                 "range_end": _b64(end), "keys_only": True})
        try:
            return {base64.b64decode(kv["key"]).decode()[len(JOINED_PREFIX):]
                    for kv in doc.get("kvs") or []}
        except (KeyError, ValueError, TypeError):
            raise MembershipError("etcd's answer to a range request is malformed") from None


JOINED_PREFIX = "/microkube/joined/"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def local_url(paths: Paths) -> str:
    """This node's own etcd client URL on loopback."""
    return f"https://127.0.0.1:{paths.ports.datastore_client}"


# --- the cache, and the API server's view ---------------------------------------------------


def cache_file(paths: Paths) -> Path:
    return paths.var_dir / "etcd-members.json"


def save_cache(paths: Paths, members: Sequence[Member]) -> bool:
    """Remember ``members``; True if that changed the cache."""
    text = json.dumps({"members": [m.to_json() for m in members]}, indent=1, sort_keys=True)
    path = cache_file(paths)
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    write_atomic(path, text)
    return True


def load_cache(paths: Paths) -> list[Member]:
    """The members last saved; empty when there is no (readable) cache."""
    try:
        doc = json.loads(cache_file(paths).read_text())
        return [Member.from_json(m) for m in doc["members"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def own_member(members: Sequence[Member], node_ip: str) -> Member | None:
    """The member whose peer URL is at ``node_ip``, if any."""
    return next((m for m in members if m.ip == node_ip), None)


def votes_alone(members: Sequence[Member], node_ip: str) -> bool:
    """True when this node's member (at ``node_ip``) is the only voter, or no member list is
    known (a single node that never formed a cluster): its etcd is its own quorum."""
    found = voters(members)
    me = own_member(members, node_ip)
    return not members or (len(found) == 1 and me is not None and found[0].id == me.id)


def etcd_servers(paths: Paths, node_ip: str, members: Sequence[Member] | None = None) -> str:
    """The API server's ``--etcd-servers``: loopback when this node votes (or no member list is
    known: a single node), else every voter's client URL, comma-separated."""
    members = load_cache(paths) if members is None else members
    me = own_member(members, node_ip)
    urls = [url for m in voters(members) for url in m.client_urls[:1]]
    if me is None or not me.is_learner or not urls:
        return local_url(paths)
    return ",".join(urls)


def describe(members: Sequence[Member]) -> dict[str, Any]:
    """The HA summary ``status`` shows: enabled?, voter names, standby names."""
    return {"enabled": high_availability(members),
            "voters": [m.label for m in voters(members)],
            "standbys": [m.label for m in standbys(members)]}

