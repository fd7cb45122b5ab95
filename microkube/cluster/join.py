"""``microkube join <ip>:<port>/<token>/<fingerprint> --worker``: make this node a worker.

The order is what keeps a join safe and a failure clean:

1. Refuse, changing nothing, a node that is a worker already or that is the
   cluster's own control plane (its CA has the join string's fingerprint), or
   whose own cluster a join may not discard (cluster/owncluster.py).
2. Fetch the CA from the agent without trusting anything, and compare its
   SHA-256 with the join string's *before* the token is sent anywhere.
3. From then on talk only over TLS that trusts that CA alone: reserve the
   token (``/v1/join/check``), discard the single-node cluster the node ran
   on its own (a fresh install, or after ``leave``), send certificate requests for keys made here
   (``/v1/join/worker``), and receive the signed certificates.
4. Write the worker's settings and credentials, start its daemons, and wait
   until its Node is Ready; then spend the token (``/v1/join/complete``).

If anything fails after step 3 began, the token is released and everything
this join wrote is removed, so the node is as it was and the retry may use the
same token. The whole join is bounded by ``timeout`` seconds, which the agent
is told: if this process dies or is cut off, the agent undoes the join at that
deadline (cluster/api.py). A marker file says a join is under way; a node that
still holds it was left half-joined by a crash, and its next join first
removes what the crashed one wrote.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from microkube.cluster.client import AgentClient, JoinError, ca_fingerprint
from microkube.cluster.joinstring import JoinString
from microkube.cluster.peers import save_agents
from microkube.config import node
from microkube.config.node import WORKER, NodeConfig
from microkube.errors import MicrokubeError, UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths

__all__ = ["JoinError", "JoinSession", "join_worker", "joining", "refuse_if_in_cluster",
           "wait_node_ready"]

Progress = Callable[[str], None]
DEFAULT_TIMEOUT = 120.0


# --- before anything is sent -------------------------------------------------------------


def refuse_if_in_cluster(paths: Paths, join: JoinString, force: bool = False) -> str | None:
    """What this join would discard of the node's own cluster, as a phrase; None if nothing.

    Raises UsageError (nothing changed) if this node is a worker already, or is
    the cluster's own control plane, or runs a cluster of its own that a join may
    not discard (cluster/owncluster.py: one with other nodes, one holding what a
    user made, or a stopped one; ``force`` allows the last two). A node left
    half-joined by a crashed join is not refused: the join cleans it up.
    """
    if not paths.state_file.exists() or paths.join_marker.exists():
        return None
    config = node.load(paths.state_file)
    if config.is_worker:
        raise UsageError(f"this node is already a worker of the cluster at {config.api_server}; "
                         "it cannot join another one")
    ca = paths.pki.ca.cert
    if ca.exists() and ca_fingerprint(ca.read_bytes()) == join.fingerprint:
        raise UsageError("this node is the control plane of that cluster: a node cannot join itself")
    from microkube.cluster.owncluster import check_discard

    return check_discard(paths, config, force)


def source_address(join: JoinString) -> str:
    """The address this host sends from to reach the agent (no packet is sent); JoinError
    when this host has no route to it (or, for IPv6, no IPv6 at all)."""
    family = socket.AF_INET6 if join.ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((str(join.ip), join.port))
            address: str = s.getsockname()[0]
            return address
    except OSError as e:
        raise JoinError(f"cannot reach the cluster agent at {join.address}: this host has no "
                        f"route to it ({e.strerror})") from None


def joiner_config(join: JoinString, chosen: Mapping[str, str] | None = None) -> NodeConfig:
    """This node's name and address: ``chosen``'s (a launch file's ``node_name``/``node_ip``),
    else MICROKUBE_NODE_NAME/_NODE_IP, else the host name and the address that reaches the
    agent. Raises UsageError for a name Kubernetes would refuse."""
    import os

    chosen = chosen or {}
    detected = node.detect(settings={k: v for k, v in chosen.items() if k == "node_name"})
    ip = chosen.get("node_ip") or os.environ.get("MICROKUBE_NODE_IP") or source_address(join)
    return NodeConfig(node_name=detected.node_name, node_ip=ip,
                      registry_mirror=detected.registry_mirror, cgroup_root=detected.cgroup_root)


def fetch_pinned_ca(join: JoinString, progress: Progress) -> bytes:
    """The agent's CA, once its SHA-256 matched the join string's; JoinError otherwise.

    The token is not sent on this connection or any other before the check passes.
    """
    progress(f"fetching the cluster CA from {join.address}")
    ca_pem = AgentClient.unverified(join.address).get_ca()
    found = ca_fingerprint(ca_pem)
    if found != join.fingerprint:
        raise JoinError(f"the cluster CA at {join.address} has the fingerprint {found}, not the "
                        f"join string's {join.fingerprint}; the token was not sent. Check the "
                        "address, or run 'microkube add-node' again on the control plane")
    progress("the cluster CA matches the join string's fingerprint")
    return ca_pem


# --- the join ------------------------------------------------------------------------------


def undo_local(paths: Paths) -> None:
    """Stop what a join started and remove what it wrote (the join marker last)."""
    from microkube.node.reset import forget_cluster

    with contextlib.suppress(MicrokubeError):
        forget_cluster(paths, lambda _line: None)


def clean_half_joined(paths: Paths, progress: Progress) -> None:
    """If a crashed join left this node half-joined, stop and remove what it left."""
    if paths.join_marker.exists():
        progress("an earlier join of this node did not finish; removing what it left")
        from microkube.node.reset import forget_cluster

        forget_cluster(paths, progress)


@contextlib.contextmanager
def reserved(client: AgentClient, token: str, progress: Progress) -> Iterator[None]:
    """Release the token if the block fails, so a retry may use it."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(MicrokubeError):
            client.post("/v1/join/release", {"token": token})
            progress("the token was released; it can be used again")
        raise


@dataclass(frozen=True)
class JoinSession:
    """A join under way, after the CA was pinned and the token reserved for this joiner.

    ``client`` trusts only the pinned CA (its PEM is ``ca_pem``); ``me`` is what this
    node will be; ``identity`` is the token, name and IP every agent call carries;
    ``deadline`` is a ``time.monotonic()`` value bounding the whole join.
    """

    join: JoinString
    client: AgentClient
    me: NodeConfig
    identity: dict[str, str]
    ca_pem: bytes
    deadline: float

    def complete(self) -> None:
        """Tell the agent the node is up, so it spends the token."""
        self.client.post("/v1/join/complete", self.identity)


def _mark_joining(paths: Paths, join: JoinString) -> None:
    """Write the marker that says a join to ``join``'s agent is under way."""
    paths.var_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.join_marker, f"{join.address}\n")


@contextlib.contextmanager
def joining(paths: Paths, join: JoinString, role: str, progress: Progress,
            timeout: float, force: bool = False,
            chosen: Mapping[str, str] | None = None) -> Iterator[JoinSession]:
    """The steps every join shares, around what the role's join does in the block.

    Before the block: refuse a node that may not join, pin the CA (before the
    token is sent), clean up after a crashed join, reserve the token for this
    joiner (the agent is told the deadline), mark the join as under way and
    discard the single-node cluster the node ran on its own, if any (``force``:
    even one holding what a user made, or a stopped one; see cluster/owncluster.py).
    If the block fails, what the join wrote is removed (the discarded cluster stays
    gone: the next ``start`` makes a fresh one) and the token released; if it
    succeeds, the marker goes. ``chosen`` names the node (joiner_config). Raises
    UsageError (nothing changed) or JoinError.
    """
    deadline = time.monotonic() + timeout
    discard = refuse_if_in_cluster(paths, join, force)
    me = joiner_config(join, chosen)
    ca_pem = fetch_pinned_ca(join, progress)
    clean_half_joined(paths, progress)
    client = AgentClient.pinned(join.address, ca_pem)
    identity = {"token": join.token, "name": me.node_name, "ip": me.node_ip}
    remaining = max(1.0, deadline - time.monotonic())
    check = {**identity, "role": role, "timeout": round(remaining, 1)}
    from microkube.cluster.settings import kubernetes_version

    version = kubernetes_version(paths)
    if version is not None:
        check["kubernetes_version"] = version  # the agent applies the skew policy
    client.post("/v1/join/check", check)
    progress(f"the token is reserved for {me.node_name} ({me.node_ip})")
    with reserved(client, join.token, progress):
        try:
            _mark_joining(paths, join)
            if discard is not None:
                # After the agent's checks passed, so a refused join discards nothing; after
                # the marker, so a crash midway is cleaned up by the next join.
                progress(f"discarding the single-node cluster this node ran on its own "
                         f"({discard}) to join the cluster at {join.address}")
                from microkube.node.reset import forget_cluster

                forget_cluster(paths, progress)
                _mark_joining(paths, join)  # forgetting removed the marker, last
            yield JoinSession(join, client, me, identity, ca_pem, deadline)
            paths.join_marker.unlink()
        except BaseException:
            # Stops the daemons and removes the certificates, the datastore and the
            # settings, and puts etcd's joining flags back (node/reset.py).
            undo_local(paths)
            raise


def join_worker(paths: Paths, join: JoinString, progress: Progress,
                timeout: float = DEFAULT_TIMEOUT, force: bool = False,
                chosen: Mapping[str, str] | None = None) -> NodeConfig:
    """Join this node to the cluster ``join`` names, as a worker; returns its new settings.

    ``progress`` gets a line per step; the join is bounded by ``timeout`` seconds;
    ``force`` discards the node's own cluster even if it holds what a user made
    or is stopped; ``chosen`` names the node (joiner_config).
    Raises UsageError for a node that may not join (nothing changed), JoinError
    when the agent refuses or cannot be reached, or the node is not Ready in time
    (then the token is released and what the join wrote is gone).
    """
    with joining(paths, join, WORKER, progress, timeout, force, chosen) as session:
        config = _admit(paths, session.client, session.identity, session.me, session.ca_pem,
                        progress)
        save_agents(paths, [join.address])
        wait_node_ready(paths, config, session.deadline, progress)
        session.complete()
    progress(f"{session.me.node_name} joined the cluster as a worker of {config.api_server}")
    return config


def _admit(paths: Paths, client: AgentClient, identity: dict[str, str], me: NodeConfig,
           ca_pem: bytes, progress: Progress) -> NodeConfig:
    """Get certificates for keys made here, write the worker's files and start its daemons."""
    from microkube.node.runtime import runtime_for
    from microkube.pki.worker import worker_request, write_worker_credentials

    request = worker_request(me.node_name, me.node_ip, socket.gethostname())
    progress("keys made on this node; asking the control plane to sign their certificates")
    answer = client.post("/v1/join/worker", {**identity, "csrs": request.csrs})
    try:
        cluster = dict(answer["cluster"])
        api_server = str(answer["api_server"])
        certificates = {k: str(v) for k, v in answer["certificates"].items()}
        config = NodeConfig(
            node_name=me.node_name, node_ip=me.node_ip, pod_cidr=cluster["pod_cidr"],
            service_cidr=cluster["service_cidr"], cluster_domain=cluster["cluster_domain"],
            api_port=int(cluster["api_port"]), registry_mirror=me.registry_mirror,
            cgroup_root=me.cgroup_root, role=WORKER, api_server=api_server)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise JoinError(f"the cluster agent's answer lacks what a worker needs ({e})") from None
    paths.ensure()
    # The kubeconfigs name the node's load balancer on loopback (services/apilb.py), which
    # starts from the API server the agent named and learns the others from the cluster.
    write_worker_credentials(paths.pki, request, certificates, ca_pem, config.api_url)
    node.save(paths.state_file, config)  # last: the node counts as set up only now
    progress(f"certificates written; the API servers are reached through {config.api_url}, "
             f"starting from {api_server}")
    runtime_for(paths).start(progress)
    return config


def wait_node_ready(paths: Paths, config: NodeConfig, deadline: float,
                     progress: Progress) -> None:
    """Wait until ``status`` says the node is Ready and every daemon serves; JoinError at ``deadline``."""
    from microkube.node.status import wait_for_ready

    st = wait_for_ready(paths, max(0.0, deadline - time.monotonic()), progress)
    if not st.ready:
        raise JoinError(f"the join did not complete in time: {st.message}; the node was "
                        "stopped and its new files removed, the token released")
    progress(f"node {config.node_name} is Ready")
