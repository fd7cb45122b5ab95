"""The Kubernetes daemons, all run in one process: ``kube kubelite`` (components/kube).

Each daemon (a *part* of kubelite) keeps its own argument file in args/, read
and expanded at every start as before; kubelite receives them together in a
small JSON spec and runs upstream's command for each. If a part ends, kubelite
writes its name to ``kubelite.failed`` and exits, so the whole process restarts
and ``status`` can say which part failed.

The pod network (flanneld, flannel's library) and NetworkPolicy enforcement (netpol,
kube-router's policy controller) are parts too, as k3s runs them in its one process:
three Go processes would each map their own copy of client-go and the Go runtime.
Each keeps its own kubeconfig and RBAC user, and waits inside kubelite until its
Node and RBAC are there (the bootstrap RBAC is applied once the API server serves).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic
from microkube.paths import Paths
from microkube.probes import http_ok
from microkube.services.base import Daemon, NodeContext
from microkube.services.netpol import NAME as NETPOL
from microkube.services.netpol import require_ipset

# The parts of a control-plane node, in the order kubelite starts them.
CONTROL_PLANE_PARTS = ("kube-apiserver", "kubelet", "kube-scheduler", "kube-proxy",
                       "kube-controller-manager")
# The parts of a worker: pods and their Services, nothing that holds cluster state.
WORKER_PARTS = ("kubelet", "kube-proxy")
FLANNEL = "flanneld"
# Every node's network parts: the pod network, and NetworkPolicy enforcement unless the
# node's settings turn it off. kubelite's readiness does not wait for them: they need
# the RBAC its after_ready applies; ``status`` reports them under their own names.
NETWORK_PARTS = (FLANNEL, NETPOL)
# Go's GC on a heap that stays well below the node's memory: a soft limit (GOMEMLIMIT)
# that only makes the GC work harder near it, with headroom over kubelite's idle heap.
GOMEMLIMIT_DEFAULT = "600MiB"


def failed_file(paths: Paths) -> Path:
    """Where kubelite writes the part that ended it: its name, then the reason (one line)."""
    return paths.run_dir / "kubelite.failed"


def failed_part(paths: Paths) -> tuple[str, str] | None:
    """(part, reason) of the part that ended the last kubelite, or None if none did since."""
    try:
        name, _, reason = failed_file(paths).read_text().partition("\n")
    except OSError:
        return None
    return (name.strip(), reason.strip()) if name.strip() else None


class Kubelite(Daemon):
    """The API server, controller-manager, scheduler, kubelet and kube-proxy in one process."""

    name = "kubelite"
    binary = "kube"
    # The node's local datastore, whichever it runs (none with an external etcd), and
    # containerd, whose after_ready imports the shipped images (the pause image among them).
    after: ClassVar[tuple[str, ...]] = ("etcd", "kine", "containerd")
    # kubelite starts once they accept connections, before they serve, so Go's start and the
    # API server's set-up (~1.5 s) overlap etcd's. The API server dials the datastore and
    # waits: each storage's etcd client blocks until its connection is up, up to 20 s
    # (k8s.io/apiserver pkg/storage/storagebackend/factory/etcd3.go: grpc.WithBlock and
    # dialTimeout); if it gives up, the API server exits and kubelite restarts with backoff.
    # etcd accepts this early only when it votes alone (services/etcd.py), kine once its
    # database answered. The kubelet waits for containerd's socket inside kubelite, and
    # starts only once the API server serves; the image import (~1 s) runs meanwhile, and no
    # pod reaches the kubelet before the controller-manager has run (it clears the Node's
    # not-ready taint). A sandbox that found no pause image would be retried by the kubelet.
    # Node Ready median 5.70 -> 4.48 s (bench_flags --ready, 5 interleaved rounds).
    after_accepting: ClassVar[tuple[str, ...]] = ("etcd", "kine", "containerd")
    # The kubelet and the API server shut down gracefully within kubelite's own 8 s.
    stop_timeout = 15.0
    # GOGC while the parts start, and the target kubelite switches to once the node has
    # settled (kubelite.go's settleGC): 10 saves ~14 MB PSS at idle with no measurable idle
    # CPU. The start's target decides how densely start-up packs the heap, which is never
    # compacted, so it shows at idle too (bench_flags, 2 interleaved rounds, kubelite PSS /
    # Node Ready): 100: 225.8 MB; 25 (the daemons' default): 198.7 MB / 4.08 s; 18: 194.6 MB
    # / 4.29 s; 15: 192.0 MB / 4.65 s; 10: 188.2 MB / 5.41 s. Switching to 10 as soon as
    # the parts have started instead saved ~6 MB for +0.7 s. 18 keeps Ready well inside 5 s.
    gogc: ClassVar[str] = "18"
    idle_gogc: ClassVar[str] = "10"
    parts: ClassVar[tuple[str, ...]] = CONTROL_PLANE_PARTS + NETWORK_PARTS

    def parts_for(self, ctx: NodeContext) -> tuple[str, ...]:
        """The parts this node runs: all but netpol when it does not enforce NetworkPolicy."""
        return tuple(p for p in self.parts if p != NETPOL or ctx.node.network_policy)

    def spec_file(self, paths: Paths) -> Path:
        return paths.run_dir / "kubelite.json"

    def prepare(self, ctx: NodeContext) -> None:
        ctx.paths.kubelet_root.mkdir(parents=True, exist_ok=True)
        if ctx.node.cgroup_root:
            from microkube.services.cgroups import ensure_cgroup

            ensure_cgroup(ctx.node.cgroup_root)
        parts = self.parts_for(ctx)
        if NETPOL in parts:
            require_ipset(ctx.paths.bin_dir)
        # A subnet file from an earlier run would let pods start before the lease is renewed.
        ctx.paths.flannel_subnet_file.unlink(missing_ok=True)
        ctx.paths.flannel_subnet_file.parent.mkdir(parents=True, exist_ok=True)
        # Every start reads every part's argument file again: an edit applies at a restart.
        spec = {
            "parts": {part: ctx.args(part) for part in parts},
            # kubelite asks /readyz as the admin: system:masters is authorized ahead of RBAC
            # (kubernetes pkg/kubeapiserver/authorizer/reload.go, the superuser authorizer).
            # Any other user may read /readyz only once the rbac/bootstrap-roles hook has
            # written the system:public-info-viewer binding, which held the kubelet's start
            # (and so the Node) until most of the ~150 default roles were written: Node
            # Ready median 6.46 -> 4.77 s (bench_flags --ready, 4 interleaved rounds).
            "ready_kubeconfig": str(ctx.paths.kubeconfig("admin")),
            "failed_file": str(failed_file(ctx.paths)),
            "runtime_socket": str(ctx.paths.containerd_socket),
        }
        ctx.paths.run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.spec_file(ctx.paths), json.dumps(spec, indent=1))

    def command(self, ctx: NodeContext) -> list[str]:
        return [str(ctx.paths.binary(self.binary)), "kubelite", str(self.spec_file(ctx.paths))]

    def environment(self, ctx: NodeContext) -> dict[str, str]:
        env = super().environment(ctx)
        env.setdefault("GOMEMLIMIT", GOMEMLIMIT_DEFAULT)
        env.setdefault("KUBELITE_IDLE_GOGC", self.idle_gogc)
        env["NODE_NAME"] = ctx.node.node_name  # how flannel finds its Node outside a pod
        return env

    def ready(self, ctx: NodeContext) -> bool:
        """The Kubernetes parts serve (not the network parts: see NETWORK_PARTS)."""
        return all(part_ready(ctx, part) for part in self.parts if part not in NETWORK_PARTS)

    def after_ready(self, ctx: NodeContext) -> None:
        # The roles kubelite's flanneld and netpol parts need (they wait for them);
        # idempotent, so every start re-applies them.
        from microkube.config.render import render
        from microkube.kube.kubectl import Kubectl

        rbac = render("bootstrap-rbac.yaml.j2", flannel_user="flannel", netpol_user="netpol")
        Kubectl(ctx.paths).apply(rbac, what="applying the bootstrap RBAC")

    def cleanup(self, ctx: NodeContext) -> None:
        from microkube.services.cleanup import unmount_below

        unmount_below(ctx.paths.kubelet_root)
        if ctx.node.cgroup_root:
            from microkube.services.cgroups import remove_cgroup

            remove_cgroup(ctx.node.cgroup_root)


class WorkerKubelite(Kubelite):
    """A worker's kubelite: only the kubelet and kube-proxy, against the cluster's API servers
    through the node's load balancer (apilb). It needs no datastore and applies nothing (a
    worker holds no admin credential)."""

    after: ClassVar[tuple[str, ...]] = ("apilb", "containerd")
    # A worker's kubelet starts at once and joins a running cluster, whose pods may come
    # to it at once: the shipped images are imported first.
    after_accepting: ClassVar[tuple[str, ...]] = ()
    parts = WORKER_PARTS + NETWORK_PARTS

    def after_ready(self, ctx: NodeContext) -> None:
        """Nothing: the control plane applies the cluster's RBAC."""


def part_ready(ctx: NodeContext, part: str) -> bool:
    """True once ``part`` of kubelite serves its health endpoint (quick: one local request).

    Raises MicrokubeError for a name that is not a part.
    """
    ports = ctx.paths.ports
    if part == "kube-apiserver":
        # As the admin: with authorization AlwaysAllow the API server refuses anonymous requests.
        from microkube.kube.api import admin_tls_context

        return http_ok(f"{ctx.node.api_url}/readyz", context=admin_tls_context(ctx.paths))
    urls = {
        # Self-signed serving certificates, on loopback only.
        "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}/healthz",
        "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}/healthz",
        "kubelet": f"http://127.0.0.1:{ports.kubelet_healthz}/healthz",
        "kube-proxy": f"http://127.0.0.1:{ports.kube_proxy_healthz}/healthz",
        # /readyz: the subnet file is written and the masquerade and forward rules are in place.
        FLANNEL: f"http://127.0.0.1:{ports.flannel_healthz}/readyz",
        # The first full policy sync has written the node's rules (components/kube/netpol.go).
        NETPOL: f"http://127.0.0.1:{ports.netpol_ready}/healthz",
    }
    if part not in urls:
        raise MicrokubeError(f"no kubelite part named {part}")
    if part == FLANNEL and not ctx.paths.flannel_subnet_file.exists():
        return False
    return http_ok(urls[part])
