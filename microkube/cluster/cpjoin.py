"""``microkube join <ip>:<port>/<token>/<fingerprint>``: make this node a control plane.

The steps and their safety are the worker join's (cluster/join.py): nothing is
sent before the CA's fingerprint matched, then only TLS that trusts that CA.
Then:

1. ``/v1/join/control-plane``: the agent adds this node's etcd member as a
   learner and answers the files every control plane shares (the CAs with
   their keys, the service-account key, the encryption configuration).
2. Those files, the etcd flags that join the existing cluster, and the member
   list are written; ``start`` makes this node's own leaf certificates from the
   CAs and starts every daemon. The API server uses the voters only: a learner
   refuses reads (datastore/membership.py).
3. Once the Node is Ready the token is spent (``/v1/join/complete``), and the
   join waits, within its timeout, for the HA rule to settle: the leader's
   agent promotes learners until one voter (below three control planes) or
   three vote (cluster/ha.py).

On an external store (PostgreSQL, MySQL, etcd) there is no member to add: the
agent answers the store's endpoints and TLS files instead, the joiner checks
that it reaches the store (as a first start does) and keeps them 0600, and the
join ends once its Node is Ready. High availability then rests on that store.

A failure before step 3 stops the node, removes everything the join wrote and
releases the token, as for a worker.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microkube.cluster.client import JoinError
from microkube.cluster.controlplane import PUBLIC_FILES, SHARED_FILES
from microkube.cluster.join import DEFAULT_TIMEOUT, Progress, joining, wait_node_ready
from microkube.cluster.joinstring import JoinString
from microkube.cluster.peers import save_agents
from microkube.config import args, node
from microkube.config.node import CONTROL_PLANE, NodeConfig
from microkube.datastore import membership, preflight, settings
from microkube.datastore.membership import Member, MembershipError
from microkube.datastore.settings import Datastore
from microkube.errors import UsageError
from microkube.fsutil import write_atomic, write_private
from microkube.paths import Paths

# Seconds between two looks at the member list while the HA rule settles.
SETTLE_STEP = 0.5
# The datastore role of a control plane on an external store: it shares it with the others.
SHARED = "shared"


def join_control_plane(paths: Paths, join: JoinString, progress: Progress,
                       timeout: float = DEFAULT_TIMEOUT,
                       force: bool = False,
                       chosen: Mapping[str, str] | None = None) -> tuple[NodeConfig, str]:
    """Join this node to the cluster ``join`` names, as a control plane.

    Returns its settings and its datastore role (``voter`` or ``standby`` on etcd,
    :data:`SHARED` on an external store).
    ``progress`` gets a line per step; the join is bounded by ``timeout`` s;
    ``force`` discards the node's own cluster even if it holds what a user made
    or is stopped (cluster/owncluster.py); ``chosen`` names the node (join.joiner_config).
    Raises UsageError for a node that may not join (nothing changed), JoinError when the
    agent refuses or cannot be reached or the node is not Ready in time (then what the
    join wrote is gone and the token released).
    """
    with joining(paths, join, CONTROL_PLANE, progress, timeout, force, chosen) as session:
        answer = session.client.post("/v1/join/control-plane", session.identity)
        if "datastore" in answer:
            store = shared_store(paths, answer["datastore"])
            progress(f"the cluster's CAs and keys received, and its datastore "
                     f"{store.display()}, which this node reaches")
        else:
            progress("the cluster's CAs and keys received; this node's etcd member was "
                     "added as a learner")
        config = install(paths, answer, session.me)
        save_agents(paths, [join.address])
        progress("files written; starting the control plane's daemons")
        from microkube.node.runtime import runtime_for

        runtime_for(paths).start(progress)
        wait_node_ready(paths, config, session.deadline, progress)
        session.complete()
    if config.datastore != settings.ETCD:
        return config, SHARED
    deadline = session.deadline
    role = wait_settled(paths, config.node_ip, deadline, progress)
    if role == "voter":
        from microkube.cluster.ha import restart_kubelite, settle_api_server

        # A standby's API server used the other voters; a voter's uses its own member.
        if settle_api_server(paths, lambda: restart_kubelite(paths)):
            progress("the API server moved onto this node's own etcd member")
            wait_node_ready(paths, config, max(deadline, time.monotonic() + 30), progress)
    return config, role


def shared_store(paths: Paths, shared: Any) -> Datastore:
    """The external store the agent shared, once this node reaches it (datastore/preflight.py).

    Nothing is written. JoinError for a malformed answer or a store that does not answer.
    """
    try:
        store = settings.parse([str(e) for e in shared["endpoints"]])
        if store.kind != shared["kind"] or not store.external:
            raise UsageError(f"{store.kind} is not the {shared['kind']} it was said to be")
    except (UsageError, KeyError, TypeError) as e:
        raise JoinError(f"the cluster agent shared a malformed datastore ({e})") from None
    with tempfile.TemporaryDirectory(prefix="microkube-join-") as tmp:
        tls = {}
        for role, text in dict(shared.get("tls") or {}).items():
            if role not in settings.TLS_FILES:
                raise JoinError(f"the cluster agent shared an unknown datastore file '{role}'")
            tls[role] = Path(tmp) / settings.TLS_FILES[role]
            write_private(tls[role], str(text))
        try:
            preflight.check(paths, settings.Datastore(store.kind, store.endpoints, tls))
        except UsageError as e:
            raise JoinError(f"{e}; this node must reach the datastore the cluster uses") \
                from None
    return store


def install(paths: Paths, answer: dict[str, Any], me: NodeConfig) -> NodeConfig:
    """Write the shared files and the datastore's settings (etcd's joining flags and member
    list, or an external store's endpoints and TLS files, 0600); the node's settings last.
    JoinError for an answer that lacks what a control plane needs."""
    try:
        files = {str(k): str(v) for k, v in answer["files"].items()}
        cluster = dict(answer["cluster"])
        kind = str(answer["datastore"]["kind"]) if "datastore" in answer else settings.ETCD
        if kind == settings.ETCD:
            etcd = dict(answer["etcd"])
            members = [Member.from_json(m) for m in etcd["members"]]
            initial_cluster = str(etcd["initial_cluster"])
        config = NodeConfig(
            node_name=me.node_name, node_ip=me.node_ip, pod_cidr=cluster["pod_cidr"],
            service_cidr=cluster["service_cidr"], cluster_domain=cluster["cluster_domain"],
            api_port=int(cluster["api_port"]), registry_mirror=me.registry_mirror,
            cgroup_root=me.cgroup_root, role=CONTROL_PLANE, datastore=kind)
    except (KeyError, TypeError, ValueError, AttributeError, UsageError) as e:
        raise JoinError(f"the cluster agent's answer lacks what a control plane needs ({e})") \
            from None
    missing = sorted(set(SHARED_FILES) - set(files))
    if missing or set(files) - set(SHARED_FILES):
        raise JoinError(f"the cluster agent's answer has the wrong shared files "
                        f"(missing: {', '.join(missing) or 'none'})")
    paths.ensure()
    for name, text in files.items():
        target = SHARED_FILES[name](paths)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if name in PUBLIC_FILES:
            write_atomic(target, text, 0o644)
        else:
            write_private(target, text)
    args.install_defaults(paths)
    if kind == settings.ETCD:
        args.set_flag(paths, "etcd", "initial-cluster", initial_cluster)
        args.set_flag(paths, "etcd", "initial-cluster-state", "existing")
        membership.save_cache(paths, members)
    else:
        try:
            store = settings.from_share(paths, answer["datastore"])
        except UsageError as e:
            raise JoinError(str(e)) from None
        from microkube.node.launch import point_api_server

        point_api_server(paths, store)
    node.save(paths.state_file, config)  # last: the node counts as set up only now
    return config


def wait_settled(paths: Paths, node_ip: str, deadline: float, progress: Progress) -> str:
    """Wait until the HA rule wants no more promotions; this node's role, ``voter`` or
    ``standby``. Past ``deadline`` the node stays a standby and a line says so."""
    progress("waiting for the datastore: the etcd leader promotes learners once caught up")
    last = ""
    while True:
        try:
            members = membership.Membership.for_node(paths).members()
            own = membership.own_member(members, node_ip)
            due = membership.promotions(members)
            if own is not None and not due:
                # Cached now, so the API server moves onto this node's own member before
                # the join returns (settle_api_server reads the cache), not when the
                # agent's next pass finds it: a join that said done must find it serving.
                membership.save_cache(paths, members)
                role = "standby" if own.is_learner else "voter"
                voters = membership.voters(members)
                progress(f"this node is an etcd {role}; voters: "
                         f"{' '.join(m.label for m in voters)}; high availability: "
                         f"{'yes' if membership.high_availability(members) else 'no'}")
                return role
            line = f"waiting for the promotion of {' '.join(m.label for m in due)}"
        except MembershipError as e:
            line = f"waiting for the datastore's member list: {e}"
        if line != last:
            progress(line)
            last = line
        if time.monotonic() >= deadline:
            progress(f"the node joined but the datastore has not settled in time ({line}); "
                     "'microkube status' shows when it has")
            return "standby"
        time.sleep(SETTLE_STEP)
