"""What ``microkube status`` reports, gathered quickly and without kubectl.

Status always has an answer: a node that was never set up, is stopped, or
whose API server does not answer is a state with a message, not an error,
so every output format stays parseable. The caller decides the exit code
from :attr:`NodeStatus.running`.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from microkube.config.node import WORKER
from microkube.errors import MicrokubeError, NotRunningError
from microkube.kube.api import KubeApi, user_tls_context
from microkube.manifests.record import FAILED, Report, load_report
from microkube.node.guard import NOT_RUNNING_MESSAGE, NOT_SET_UP_MESSAGE, is_set_up
from microkube.node.runtime import runtime_for
from microkube.paths import Paths
from microkube.services.base import NodeContext

if TYPE_CHECKING:
    from microkube.addons.listing import AddonStatus
    from microkube.datastore.quorum import Quorum
    from microkube.services.apilb import BalancerState


T = TypeVar("T")


def in_background(fn: Callable[..., T], *args: object) -> Callable[[], T]:
    """Start ``fn(*args)`` in a daemon thread; returns a function that waits for it and
    gives its result, or raises what it raised.

    concurrent.futures would do, but imports logging and traceback with it: 6.8 ms (the
    least of 15 imports), and status's median went 174 -> 167 ms without it (20 runs
    each, interleaved, on a running node; issue 11).
    """
    import threading

    outcome: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as e:  # handed to the waiter, raised there
            outcome.append((False, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        ok, value = outcome[0]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    return result


class NodeState(enum.StrEnum):
    """Where a node stands, from least to most alive."""

    NOT_SET_UP = "not-set-up"  # no settings on disk: 'microkube start' has never run
    STOPPED = "stopped"  # set up, no daemon runs
    NO_QUORUM = "no-quorum"  # daemons run, too few etcd voters answer for the API to write
    API_DOWN = "api-down"  # daemons run, the API server does not answer
    NOT_READY = "not-ready"  # the API answers, the Node is not Ready (yet)
    READY = "ready"


@dataclass
class NodeStatus:
    """One look at the node.

    ``daemons`` maps a daemon's name to its state (waiting, starting, ready,
    backoff, stopped); ``addons`` is empty unless the node runs;
    ``cert_days_left`` is None when no certificate could be read.
    """

    state: NodeState
    message: str = ""
    node_name: str = ""
    api_server: str = ""
    daemons: dict[str, str] = field(default_factory=dict)
    # On a control plane that runs: the etcd voters and standbys (learners), by node name.
    voters: list[str] = field(default_factory=list)
    standbys: list[str] = field(default_factory=list)
    addons: list[AddonStatus] = field(default_factory=list)
    cert_earliest: str = ""
    cert_days_left: int | None = None
    role: str = "control-plane"
    control_plane: str = ""  # the API server a worker joined through
    # A worker's API load balancer: the server in use, the list, the ones that answer.
    load_balancer: BalancerState | None = None
    # On a control plane that runs: every Node, as (name, role, Ready?).
    nodes: list[tuple[str, str, bool]] = field(default_factory=list)
    # The node's setting: NetworkPolicy enforced by kubelite's netpol part.
    network_policy: bool = True
    # A control plane's datastore: its kind and, for an external one, where (password masked).
    datastore: str = ""
    datastore_endpoint: str = ""
    # A running node's external database that does not answer: one line naming it.
    datastore_problem: str = ""
    # On a control plane: the deploy folder, and its deployer's last outcome per file
    # (None until the deployer has finished a pass).
    manifests_dir: str = ""
    manifests: Report | None = None
    # A control plane on etcd with more than one voter, daemons running: who answers.
    quorum: Quorum | None = None

    def failed_manifests(self) -> list[tuple[str, str]]:
        """The deploy folder's files that failed, as (file, message), sorted."""
        if self.manifests is None:
            return []
        return sorted((n, o.message) for n, o in self.manifests.files.items() if o.state == FAILED)

    @property
    def running(self) -> bool:
        """True when the API server answers (MicroK8s's meaning of 'running')."""
        return self.state in (NodeState.NOT_READY, NodeState.READY)

    @property
    def ready(self) -> bool:
        return self.state is NodeState.READY

    @property
    def shared_datastore(self) -> bool:
        """True on an external store (PostgreSQL, MySQL, etcd) every control plane uses."""
        from microkube.datastore.settings import Datastore

        return bool(self.datastore) and Datastore(self.datastore).external

    @property
    def control_planes(self) -> list[str]:
        """The names of the cluster's control-plane Nodes."""
        return [name for name, role, _ in self.nodes if role == "control-plane"]

    @property
    def high_availability(self) -> bool:
        """Three etcd voters; on a shared external store, two control planes (the store's
        own availability is the database's business)."""
        from microkube.datastore.membership import HA_VOTERS

        if self.shared_datastore:
            return len(self.control_planes) >= 2
        return len(self.voters) >= HA_VOTERS

    def datastore_role(self, node_name: str) -> str:
        """``voter``, ``standby``, ``shared`` (a control plane on an external store) or
        ``none`` (a worker, or a node etcd does not list)."""
        if self.shared_datastore:
            return "shared" if node_name in self.control_planes else "none"
        return ("voter" if node_name in self.voters
                else "standby" if node_name in self.standbys else "none")

    def pending(self) -> list[str]:
        """Names of the daemons that do not serve yet, sorted."""
        return sorted(n for n, s in self.daemons.items() if s != "ready")

    def as_dict(self) -> dict[str, object]:
        """The ``--format yaml`` document: plain builtins, the same keys in every state."""
        doc: dict[str, object] = {
            "microkube": {"running": self.running, "ready": self.ready,
                          "state": str(self.state), "message": self.message},
        }
        if self.state is NodeState.NOT_SET_UP:
            return doc
        doc.update({
            "node": self.node_name,
            "role": self.role,
            "api-server": self.api_server,
            "daemons": self.daemons,
            "network-policy": {"enforced": self.network_policy},
            **({"datastore": {"kind": self.datastore, "endpoint": self.datastore_endpoint,
                              "problem": self.datastore_problem,
                              **({"quorum": self.quorum.record()} if self.quorum else {})}}
               if self.datastore else {}),
            "certificates": {"earliest": self.cert_earliest, "days-left": self.cert_days_left},
        })
        if self.running and self.role == WORKER:
            doc["control-plane"] = self.control_plane
            if self.load_balancer is not None:
                doc["api-load-balancer"] = self.load_balancer.as_dict()
        elif self.running:
            ha: dict[str, object] = {"enabled": self.high_availability,
                                     "voters": self.voters, "standbys": self.standbys}
            if self.shared_datastore:
                ha["rests-on"] = self.datastore_endpoint  # the external store, masked
            doc["high-availability"] = ha
            doc["nodes"] = [{"name": n, "role": r, "ready": ok,
                             "datastore": self.datastore_role(n)} for n, r, ok in self.nodes]
            doc["addons"] = [a.record() for a in self.addons]
            files = self.manifests.files if self.manifests is not None else {}
            doc["manifests"] = {
                "folder": self.manifests_dir,
                # The deployer (in the cluster agent) finished a pass: its report is there.
                "ready": self.manifests is not None,
                "files": [{"file": n, "state": o.state, "message": o.message}
                          for n, o in sorted(files.items())]}
        return doc


def _daemon_note(daemons: dict[str, str]) -> str:
    waiting = [f"{n}: {s}" for n, s in sorted(daemons.items()) if s != "ready"]
    return f" ({', '.join(waiting)})" if waiting else ""


def assess(daemons: dict[str, str] | None, api_ready: int, node_ready: bool,
           api_server: str, quorum: Quorum | None = None) -> tuple[NodeState, str]:
    """The state and its message from what was seen (a set-up node).

    ``daemons`` is None when nothing runs; ``api_ready`` is the HTTP status of
    the API server's /readyz (0 when nothing answered); ``node_ready`` is the
    Node's Ready condition; ``quorum`` the etcd voters' (None: not asked). A lost
    quorum outranks whatever the API server said: it cannot write.
    """
    if daemons is None:
        return NodeState.STOPPED, NOT_RUNNING_MESSAGE
    if quorum is not None and not quorum.ok:
        return NodeState.NO_QUORUM, quorum.line()
    note = _daemon_note(daemons)
    if api_ready != 200:
        why = "does not answer" if api_ready == 0 else f"is not ready (HTTP {api_ready})"
        return NodeState.API_DOWN, (
            f"microkube is not running: its daemons run but the API server at {api_server} "
            f"{why}{note}; wait with 'microkube status --wait-ready' or see 'microkube inspect'")
    if not node_ready or note:
        return NodeState.NOT_READY, f"the node is not Ready yet{note}"
    return NodeState.READY, ""


def _with_failed_part(paths: Paths, states: dict[str, str]) -> dict[str, str]:
    """``states`` with kubelite's, when it is not ready, naming the part that ended it last."""
    state = states.get("kubelite")
    if state is None or state == "ready":
        return states
    from microkube.services.kubernetes import failed_part  # here: a ready node skips it

    failed = failed_part(paths)
    if failed is None:
        return states
    return {**states, "kubelite": f"{state}: {failed[0]} failed ({failed[1][:200]})"}


def _probe_network_parts(ctx: NodeContext,
                         states: dict[str, str]) -> dict[str, Callable[[], bool]]:
    """Start probing each of kubelite's network parts (flanneld, netpol) this node runs, in
    the background: each part's waiter says whether it serves its readiness endpoint. Empty
    when kubelite does not run here."""
    from microkube.services.kubernetes import NETWORK_PARTS, Kubelite, part_ready

    if Kubelite.name not in states:
        return {}
    return {p: in_background(part_ready, ctx, p)
            for p in Kubelite().parts_for(ctx) if p in NETWORK_PARTS}


def _with_network_parts(states: dict[str, str],
                        parts: dict[str, Callable[[], bool]]) -> dict[str, str]:
    """``states`` with kubelite's network parts (flanneld, netpol) under their own names,
    right after kubelite: kubelite's readiness does not wait for them (they start once the
    RBAC its after_ready applies is there), so they are reported apart. ``parts``: each
    part's probe (:func:`_probe_network_parts`). A part is ready once it serves its
    readiness endpoint, else in kubelite's state ("starting" when kubelite is ready)."""
    from microkube.services.kubernetes import Kubelite

    out: dict[str, str] = {}
    for name, daemon_state in states.items():
        out[name] = daemon_state
        if name == Kubelite.name:
            for part, serving in parts.items():
                out[part] = ("ready" if serving() else
                             "starting" if daemon_state == "ready" else daemon_state.split(":")[0])
    return out


def _with_datastore_error(paths: Paths, states: dict[str, str]) -> dict[str, str]:
    """``states`` with kine's, when it is not ready, carrying the last error it logged
    (a database that refuses the password or went away)."""
    state = states.get("kine")
    if state is None or state == "ready":
        return states
    from microkube.datastore.kine import log_error  # here: a ready node skips it

    error = log_error(paths)
    return states if error is None else {**states, "kine": f"{state}: {error[:300]}"}


def _datastore_problem(paths: Paths, kind: str) -> str:
    """Why the node's external database does not answer (one line), "" when it does or the
    node has none (datastore/health.py: one connection, a second at most)."""
    from microkube.datastore import health, settings

    try:
        return health.problem(settings.load(paths, kind)) or ""
    except MicrokubeError:
        return ""


def gather(paths: Paths) -> NodeStatus:
    """Look at the node once; never raises for a node that is down or was never set up."""
    if not is_set_up(paths):
        return NodeStatus(NodeState.NOT_SET_UP, NOT_SET_UP_MESSAGE)
    ctx = NodeContext.load(paths)
    worker = ctx.node.is_worker
    st = NodeStatus(NodeState.STOPPED, node_name=ctx.node.node_name, api_server=ctx.node.api_url,
                    role=ctx.node.role, control_plane=ctx.node.api_server or "",
                    network_policy=ctx.node.network_policy)
    if worker:
        from microkube.services.apilb import read_state  # a worker's alone

        st.load_balancer = read_state(paths.apilb_state_file)
    else:
        from microkube.datastore import settings

        st.datastore = ctx.node.datastore
        with contextlib.suppress(MicrokubeError):
            st.datastore_endpoint = settings.load(paths, ctx.node.datastore).display()
    runtime = runtime_for(paths)
    st.cert_earliest, st.cert_days_left = runtime.certificate_summary()
    states = runtime.daemon_states()
    if states is None:
        st.state, st.message = assess(None, 0, False, ctx.node.api_url)
    else:
        _look_at_running(paths, ctx, st, states)
    if not worker:
        st.manifests_dir = str(paths.manifests_dir)
        st.manifests = load_report(paths.manifests_report_file) if st.running else None
    return st


def _look_at_running(paths: Paths, ctx: NodeContext, st: NodeStatus,
                     states: dict[str, str]) -> None:
    """Fill ``st`` for a node whose daemons run (``states``: theirs, from the runtime).

    The probes and reads wait on sockets and files, not on each other: they run at once,
    so status takes about as long as the slowest (issue 11). The datastore's members and
    the addons are shown only on a running control plane: they are asked for once the API
    server's /readyz answered 200, beside the Node list, never to be thrown away.
    """
    worker = ctx.node.is_worker
    states = _with_datastore_error(paths, _with_failed_part(paths, states))
    parts = _probe_network_parts(ctx, states)
    if not worker and ctx.node.datastore == "etcd":
        from microkube.datastore import quorum

        st.quorum = quorum.probe(paths)
    elif not worker:
        st.datastore_problem = _datastore_problem(paths, ctx.node.datastore)
    api_ready, node_ready = 0, False
    if st.quorum is None or st.quorum.ok:
        # Without a quorum the API server's /readyz would only time out: status stays fast.
        answering = None if worker else partial(_look_at_control_plane, paths, ctx, st)
        api_ready, node_ready, st.nodes = _ask_api(paths, ctx, answering)
    st.daemons = states = _with_network_parts(states, parts)
    st.state, st.message = assess(states, api_ready, node_ready, ctx.node.api_url, st.quorum)
    if st.datastore_problem and not st.ready:
        st.message = f"{st.message}; {st.datastore_problem}"


def _look_at_control_plane(paths: Paths, ctx: NodeContext, st: NodeStatus) -> Callable[[], None]:
    """Start reading a running control plane's addons and (on etcd) its datastore members
    in the background; returns the function that waits for them and fills ``st``."""
    from microkube.addons.listing import addon_statuses

    addons = in_background(addon_statuses, paths, ctx.node.substitutions())
    members = (in_background(datastore_members, paths, ctx.node.node_name)
               if ctx.node.datastore == "etcd" else None)

    def fill() -> None:
        if members is not None:
            st.voters, st.standbys = members()
        st.addons = addons()

    return fill


def _ask_api(paths: Paths, ctx: NodeContext,
             answering: Callable[[], Callable[[], None]] | None = None,
             ) -> tuple[int, bool, list[tuple[str, str, bool]]]:
    """(the HTTP status of the API server's /readyz (0: no answer), this Node's Ready, the
    cluster's Nodes (a control plane's; empty on a worker or when the API is not ready)).

    ``answering``, when given, is called once /readyz answered 200 (the node runs), before
    the Node list is asked for; what it returns is called after the list came.
    """
    worker = ctx.node.is_worker
    try:
        # A worker has no admin credentials; its kubelet's may read its own Node. The
        # node's settings are in hand: KubeApi.for_user would read them again.
        api = KubeApi(ctx.node.api_url, user_tls_context(paths, "kubelet" if worker else "admin"),
                      timeout=1.0)
        api_ready = api.status_code("/readyz")
    except MicrokubeError:
        return 0, False, []
    if api_ready != 200:
        return api_ready, False, []
    finish = answering() if answering is not None else None
    try:
        if worker:
            return api_ready, api.node_ready(ctx.node.node_name), []
        # One list answers both: this node's Ready and the cluster's nodes.
        nodes = cluster_nodes(api)
        return api_ready, any(name == ctx.node.node_name and ready
                              for name, _, ready in nodes), nodes
    except MicrokubeError:
        return 0, False, []
    finally:
        if finish is not None:
            finish()


ROLE_LABEL = "microkube.io/role"


def quorum_note(paths: Paths) -> str:
    """Right after ``start`` on a control plane whose etcd has peers: a line saying that it
    waits for the datastore's quorum when too few voters answer (this node's own counted
    up: its etcd is starting); "" when there is no wait (a quorum, one voter, no etcd).

    After a site power loss the first node up cannot serve alone; this says so rather than
    failing, and the API serves once enough peers start.
    """
    from microkube.datastore import membership, quorum

    ctx = NodeContext.load(paths)
    if ctx.node.is_worker or ctx.node.datastore != "etcd":
        return ""
    members = membership.load_cache(paths)
    found = quorum.probe(paths, members)
    own = membership.own_member(members, ctx.node.node_ip)
    if found is None or own is None:
        return ""
    found = quorum.assess(found.voters, {*found.answering, own.label})
    if found.ok:
        return ""
    return (f"waiting for the datastore's quorum: {found.summary()}; this node serves once "
            "enough of them start")


def datastore_members(paths: Paths, own_name: str) -> tuple[list[str], list[str]]:
    """(voters, standbys) by name: asked of etcd (one request, one second at most), else the
    member list this node saw last; this node alone when neither answers."""
    from microkube.datastore import membership

    try:
        members = membership.Membership.for_node(paths, timeout=1.0).members()
    except MicrokubeError:
        members = membership.load_cache(paths)
    if not members:
        return [own_name], []
    return ([m.label for m in membership.voters(members)],
            [m.label for m in membership.standbys(members)])


def cluster_nodes(api: KubeApi) -> list[tuple[str, str, bool]]:
    """Every Node from one list call, as (name, role, Ready?); the role is the kubelet's
    ``microkube.io/role`` label ("unknown" without it)."""
    doc = api.get("/api/v1/nodes")
    items = doc.get("items") if isinstance(doc, dict) else None
    found = []
    for item in items if isinstance(items, list) else []:
        meta = item.get("metadata", {})
        conditions = item.get("status", {}).get("conditions", [])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        role = (meta.get("labels") or {}).get(ROLE_LABEL, "unknown")
        found.append((str(meta.get("name", "")), str(role), ready))
    return sorted(found)


def wait_for_ready(paths: Paths, timeout: float, progress: Callable[[str], None]) -> NodeStatus:
    """Look until the node is Ready, cannot become Ready (not running), or ``timeout`` s pass.

    Prints a line through ``progress`` whenever the picture changes; returns the
    last look, whose message says why it is not Ready (the wait's length included).
    """
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        st = gather(paths)
        if st.ready or st.state in (NodeState.NOT_SET_UP, NodeState.STOPPED):
            return st
        pending = st.pending()
        line = ("waiting for " + ", ".join(pending)) if pending else "waiting for the node to be Ready"
        if st.state is NodeState.NO_QUORUM and st.quorum is not None:
            line = f"waiting for the datastore's quorum: {st.quorum.summary()}"
        if line != last:
            progress(line)
            last = line
        if time.monotonic() >= deadline:
            st.message = f"the node was not Ready within {timeout:.0f} s ({line})"
            return st
        time.sleep(0.25)


def wait_ready(paths: Paths, timeout: float, progress: Callable[[str], None]) -> NodeStatus:
    """Like :func:`wait_for_ready`, but a node that is not Ready in the end is an error.

    Raises NotRunningError for a node that is not running, MicrokubeError on timeout.
    """
    st = wait_for_ready(paths, timeout, progress)
    if st.ready:
        return st
    if st.state in (NodeState.NOT_SET_UP, NodeState.STOPPED):
        raise NotRunningError(st.message)
    raise MicrokubeError(st.message)
