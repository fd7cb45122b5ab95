"""``microkube refresh-certs``: renew this node's leaves, or rotate a single node's CA.

Nothing stops the workloads: only the daemons that read a rewritten file restart
(services/certreaders.py); containerd and the pods keep running. A control plane
re-issues its own leaves from its CAs; a worker renews its credentials through a
control plane's cluster agent (cluster/renew.py). On a cluster the answer also
says what the other nodes renew, and how.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from microkube.config.node import NodeConfig
from microkube.errors import MicrokubeError, UsageError
from microkube.node import setup
from microkube.node.runtime import Progress, runtime_for
from microkube.paths import Paths

CA_CERT = "ca.crt"


@dataclass
class RefreshReport:
    """What ``refresh-certs`` did on this node and what the cluster's other nodes renew.

    ``renewed``: file names rewritten here; ``restarted``: daemon -> the files it restarted
    for; ``through``: the agent (``ip:port``) that signed a worker's renewal;
    ``elsewhere``: one line per kind of other node.
    """

    node: str
    role: str
    renewed: list[str] = field(default_factory=list)
    restarted: dict[str, list[str]] = field(default_factory=dict)
    through: str = ""
    elsewhere: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report, one line per fact."""
        where = f"on this node ({self.node}, {self.role})"
        via = f" through the control plane at {self.through}" if self.through else ""
        out = [f"{where}: renewed{via}: {', '.join(self.renewed) or 'nothing'}"]
        if self.restarted:
            daemons = ", ".join(f"{d} ({', '.join(files)})" for d, files in self.restarted.items())
            out.append(f"restarted {daemons}; containerd and the pods kept running")
        elif self.renewed:
            out.append("restarted nothing: the node is stopped, or every reader reloads on "
                       "its own")
        return out + self.elsewhere


def refresh_certs(paths: Paths, only: list[str] | None, progress: Progress,
                  due_only: bool = False) -> RefreshReport:
    """Renew this node's leaf certificates (all, or the file names in ``only``, or with
    ``due_only`` those due by pki/lifetime.py's rule; a worker's through a control plane),
    or rotate the CA when ``only`` is ``["ca.crt"]``.

    Restarts the running daemons that read a rewritten file, and nothing else. Raises
    UsageError for an unknown name or a CA rotation on a multi-node cluster, MicrokubeError
    when a worker's control plane does not sign.
    """
    ctx = setup.load_context(paths)
    config = ctx.node
    report = RefreshReport(config.node_name, config.role)
    if only and CA_CERT in only:
        if only != [CA_CERT]:
            raise UsageError("rotate the CA on its own: 'microkube refresh-certs --cert ca.crt' "
                             "re-issues every leaf and kubeconfig anyway")
        _refuse_shared_ca(paths, config)
        progress("rotating the cluster CA: a new key, every leaf and kubeconfig re-issued")
        from microkube.pki.node import rotate_ca

        report.renewed = sorted(rotate_ca(**setup.pki_identity(paths, config)).renewed)
    elif due_only:
        # What the supervisor does on its own; the snap, which has none, runs it on a timer.
        if config.is_worker:
            from microkube.cluster.renew import renew_worker

            renewal = renew_worker(paths, config)
            report.renewed, report.through = renewal.renewed, renewal.agent
        else:
            report.renewed = sorted(setup.ensure_pki(paths, config).renewed)
    elif config.is_worker:
        from microkube.cluster.renew import renew_worker

        progress("asking a control plane to sign new certificates for keys made here")
        renewal = renew_worker(paths, config, only or _all_worker_files())
        report.renewed, report.through = renewal.renewed, renewal.agent
    else:
        from microkube.pki.node import refresh

        report.renewed = sorted(refresh(**setup.pki_identity(paths, config),
                                        only=only or None).renewed)
        report.elsewhere = _other_nodes(paths, config)
    report.restarted = restart_readers(paths, report.renewed, progress)
    return report


def _all_worker_files() -> list[str]:
    from microkube.pki.workerfiles import FILES

    return list(FILES.values())


def restart_readers(paths: Paths, renewed: list[str], progress: Progress) -> dict[str, list[str]]:
    """Restart the running daemons that read one of the ``renewed`` files, each once it is
    ready again before the next; returns daemon -> files. A stopped node restarts nothing."""
    from microkube.services.certreaders import daemons_to_restart

    runtime = runtime_for(paths)
    states = runtime.daemon_states()
    if states is None or not renewed:
        return {}
    restart = daemons_to_restart(renewed, list(states))
    for daemon, files in restart.items():
        progress(f"restarting {daemon} to load {', '.join(files)}")
        runtime.restart_daemon(daemon, timeout=120.0)
    return restart


def _refuse_shared_ca(paths: Paths, config: NodeConfig) -> None:
    """UsageError (one line, the way out) unless this control plane is alone in its cluster
    and runs (to be sure of that)."""
    hint = ("rotate it on a single-node cluster only: have the other nodes leave "
            "('microkube leave' on each), rotate the CA here, then join them again "
            "('microkube add-node')")
    if config.is_worker:
        raise UsageError(f"this worker trusts its cluster's CA, which every node shares; {hint}")
    others = _other_node_names(paths, config, _roles_or_refuse)
    if others:
        raise UsageError(f"the CA is shared with {len(others)} other node"
                         f"{'s' if len(others) > 1 else ''} ({', '.join(sorted(others))}); "
                         + hint)


def _roles_or_refuse(e: MicrokubeError) -> dict[str, str]:
    raise UsageError(f"cannot tell whether other nodes share the CA ({e}); start the node "
                     "('microkube start') and try again") from None


def _other_node_names(paths: Paths, config: NodeConfig,
                      on_error: Callable[[MicrokubeError], dict[str, str]]) -> dict[str, str]:
    """The cluster's other nodes (Nodes and etcd members), name -> role label."""
    from microkube.cluster.roster import LocalRoster
    from microkube.node.status import ROLE_LABEL

    roster = LocalRoster(paths)
    try:
        found = {str(n.get("metadata", {}).get("name", "")):
                 str((n.get("metadata", {}).get("labels") or {}).get(ROLE_LABEL, "unknown"))
                 for n in roster.nodes()}
        if config.datastore == "etcd":
            for m in roster.members():
                found.setdefault(m.name, "control-plane")
    except MicrokubeError as e:
        return on_error(e)
    found.pop(config.node_name, None)
    found.pop("", None)
    return found


def _other_nodes(paths: Paths, config: NodeConfig) -> list[str]:
    """One line per kind of other node: what it renews, and how."""
    from microkube.config.node import WORKER
    from microkube.pki.workerfiles import FILES, KINDS

    others = _other_node_names(paths, config, lambda _e: {})
    workers = sorted(n for n, role in others.items() if role == WORKER)
    planes = sorted(n for n, role in others.items() if role != WORKER)
    lines = []
    if planes:
        lines.append(f"control planes {', '.join(planes)}: renew their own leaves from the "
                     "shared CAs when a third of a certificate's lifetime is left (run "
                     "'microkube refresh-certs' there to renew now)")
    if workers:
        lines.append(f"workers {', '.join(workers)}: renew "
                     f"{', '.join(FILES[k] for k in KINDS)} through a control plane's "
                     "cluster agent when a third of a certificate's lifetime is left (run "
                     "'microkube refresh-certs' there to renew now)")
    return lines
