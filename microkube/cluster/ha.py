"""High availability on its own: the cluster agent's reconciler, one pass every few seconds.

Each pass, on every control plane:

1. reads the etcd member list (from a voter) and caches it (datastore/membership.py);
2. on the etcd leader only: promotes the learners the HA rule wants voting
   (one voter below three members, then three), unless a voter is down, and
   only once a learner has caught up (etcd refuses earlier; the next pass retries);
3. restarts kubelite when the API server's ``--etcd-servers`` computed from the
   list (this node's member when it votes, else the voters) differs from the
   one it runs with: a standby just promoted moves to its own member.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from microkube.config import args
from microkube.datastore import membership
from microkube.datastore.membership import Member, Membership, MembershipError
from microkube.errors import MicrokubeError
from microkube.paths import Paths
from microkube.services.base import NodeContext

log = logging.getLogger("microkube.cluster.ha")

INTERVAL = 2.0


@dataclass
class PassResult:
    """What one pass saw and did."""

    members: list[Member] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    waiting: str = ""  # why a wanted promotion did not happen (yet)
    restarted: bool = False


def running_etcd_servers(paths: Paths) -> str | None:
    """The ``--etcd-servers`` the running kubelite's API server was started with; None if
    kubelite has no spec (never started here)."""
    from microkube.services.kubernetes import Kubelite

    try:
        spec = json.loads(Kubelite().spec_file(paths).read_text())
        return args.flag_value(list(spec["parts"]["kube-apiserver"]), "etcd-servers")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def promote_due(ms: Membership, members: list[Member], own: Member | None,
                leader_id: int) -> tuple[list[str], str]:
    """Promote what the HA rule wants, if this node's member leads; (promoted names, why not)."""
    if own is None or own.is_learner or own.id != leader_id \
            or not membership.promotions(members):
        return [], ""
    due = membership.promotions(members, ms.joined())
    if not due:
        return [], "waiting for learners to complete their join before promoting them"
    down = ms.unhealthy_voters(members)
    if down:
        return [], f"not promoting {', '.join(m.label for m in due)}: voter {', '.join(down)} " \
                   "does not answer"
    promoted: list[str] = []
    for m in due:
        try:
            ms.promote(m)
        except MembershipError as e:
            return promoted, f"{m.label} not promoted yet: {e}"
        promoted.append(m.label)
    return promoted, ""


def reconcile_once(paths: Paths, restart_kubelite: Callable[[], None]) -> PassResult:
    """One pass (see the module doc). Raises MembershipError when no voter answers."""
    ctx = NodeContext.load(paths)
    ms = Membership.for_node(paths)
    result = PassResult(members=ms.members())
    own = membership.own_member(result.members, ctx.node.node_ip)
    if own is not None and not own.is_learner:
        status = ms.status(membership.local_url(paths))
        result.promoted, result.waiting = promote_due(ms, result.members, own,
                                                      int(status.get("leader", 0)))
        if result.promoted:
            result.members = ms.members()
    membership.save_cache(paths, result.members)
    result.restarted = settle_api_server(paths, restart_kubelite)
    return result


def settle_api_server(paths: Paths, restart_kubelite: Callable[[], None]) -> bool:
    """Restart kubelite if the API server's ``--etcd-servers`` computed from the cached member
    list differs from the one it runs with; True if it did. One caller at a time (the
    agent's reconciler and a join may both ask), so kubelite restarts once."""
    import fcntl
    import os

    paths.run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.run_dir / "etcd-servers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        running = running_etcd_servers(paths)
        wanted = args.flag_value(NodeContext.load(paths).args("kube-apiserver"), "etcd-servers")
        if running is None or wanted is None or running == wanted:
            return False
        log.info("the API server's etcd members change from %s to %s: restarting kubelite",
                 running, wanted)
        restart_kubelite()
        return True
    finally:
        os.close(fd)


def restart_kubelite(paths: Paths) -> None:
    """Restart this node's kubelite through its runtime (supervisor or snapd)."""
    from microkube.node.runtime import runtime_for

    runtime_for(paths).restart_daemon("kubelite", timeout=120)


class Reconciler:
    """Runs passes and logs only what changed (a pass every INTERVAL s adds no log noise)."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._last = ""

    def step(self) -> None:
        """One pass; never raises for a datastore or node that cannot answer now."""
        try:
            result = reconcile_once(self.paths, lambda: restart_kubelite(self.paths))
            line = result.waiting or "voters: " + " ".join(
                m.label for m in membership.voters(result.members))
            for name in result.promoted:
                log.info("promoted %s to an etcd voter", name)
        except MicrokubeError as e:
            line = f"cannot reconcile the datastore's members: {e}"
        if line != self._last:
            log.info("%s", line)
            self._last = line
