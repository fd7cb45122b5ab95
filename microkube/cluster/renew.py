"""A worker renews its credentials through a control plane, as it got them at its join.

The worker makes new keys and sends only certificate requests, over TLS that
trusts its cluster CA alone, proving who it is with its current kubelet client
certificate; the agent signs them with the join's restricted profiles, fixed to
that name (cluster/api.py, ``/v1/certificates/worker``). The keys never leave the
worker. It asks the agents it knows (cluster/peers.py) in turn until one answers.
A worker whose client certificate has already expired cannot prove who it is: it
must join again, which is why renewal starts when a third of the lifetime is left.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from microkube.cluster.client import AgentClient, AgentError
from microkube.cluster.peers import load_agents
from microkube.config.node import NodeConfig
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import Paths

RENEW_PATH = "/v1/certificates/worker"


@dataclass(frozen=True)
class WorkerRenewal:
    """What a renewal rewrote (file names, sorted) and the agent that signed (``ip:port``)."""

    renewed: list[str]
    agent: str


def due_kinds(paths: Paths, now: dt.datetime | None = None) -> tuple[str, ...]:
    """The worker credentials (pki/workerfiles.py KINDS) that are missing, unreadable or due for
    renewal at ``now`` (pki/lifetime.py)."""
    from microkube.pki.certs import load_cert
    from microkube.pki.errors import PkiError
    from microkube.pki.kubeconfig import read_kubeconfig
    from microkube.pki.lifetime import is_due
    from microkube.pki.workerfiles import FILES, KINDS, KUBECONFIGS, SERVING

    now = now or dt.datetime.now(dt.UTC)
    due = []
    for kind in KINDS:
        try:
            if kind == SERVING:
                cert = load_cert(paths.pki.kubelet.cert)
            else:
                found = read_kubeconfig(paths.kubeconfig(KUBECONFIGS[kind])).client_cert()
                if found is None:
                    raise PkiError(f"{FILES[kind]} has no client certificate")
                cert = found
        except PkiError:
            due.append(kind)
            continue
        if is_due(cert.not_valid_before_utc, cert.not_valid_after_utc, now):
            due.append(kind)
    return tuple(due)


def kinds_named(names: Collection[str]) -> tuple[str, ...]:
    """The credentials behind file names (``kubelet.crt``, ``proxy.config``); UsageError for a
    name a worker does not renew."""
    from microkube.pki.workerfiles import FILES, KINDS

    by_file = {f: k for k, f in FILES.items()}
    unknown = sorted(set(names) - set(by_file))
    if unknown:
        raise UsageError(f"a worker cannot renew {', '.join(unknown)}: choose from "
                         f"{', '.join(FILES[k] for k in KINDS)} (its CA is its cluster's)")
    return tuple(k for k in KINDS if FILES[k] in names)


def renew_worker(paths: Paths, config: NodeConfig,
                 only: Collection[str] | None = None) -> WorkerRenewal:
    """Renew this worker's credentials through a control plane: those named in ``only``
    (file names), or else those due. Returns what was rewritten (nothing if none was due).

    Raises UsageError for a name a worker does not renew, AgentError when an agent refuses
    (its one line) or none answers, MicrokubeError when the answer lacks a certificate.
    """
    from microkube.pki.worker import worker_request, write_renewed

    kinds = kinds_named(only) if only else due_kinds(paths)
    if not kinds:
        return WorkerRenewal([], "")
    agents = load_agents(paths, config)
    if not agents:
        raise MicrokubeError("this worker knows no cluster agent to renew its certificates "
                             "through; join it again")
    request = worker_request(config.node_name, config.node_ip, socket.gethostname(), kinds)
    answer, agent = _ask(paths, agents, {"csrs": request.csrs})
    try:
        certificates = {k: str(answer["certificates"][k]) for k in kinds}
    except (KeyError, TypeError) as e:
        raise MicrokubeError(f"the cluster agent at {agent} did not sign {e}") from None
    renewed = write_renewed(paths.pki, request, certificates, config.api_url)
    return WorkerRenewal(renewed, agent)


def _ask(paths: Paths, agents: list[str], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The first answer of the agents in turn; an agent's refusal ends the search."""
    unreachable = []
    for address in agents:
        try:
            return AgentClient.as_node(address, paths).post(RENEW_PATH, body), address
        except AgentError as e:
            if e.status == 0 or e.status >= 500:
                unreachable.append(str(e))
                continue
            raise
    raise AgentError("no cluster agent could renew this worker's certificates: "
                     + "; ".join(unreachable))
