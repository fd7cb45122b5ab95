"""``microkube leave``: take this node out of its cluster and make it a fresh single node.

1. Find a control plane to ask: a worker's recorded agent; a control plane's
   peers from the datastore's member list (never itself). Refuse, changing
   nothing, a control plane that is its cluster's only one.
2. Ask that agent, proving who this node is with its kubelet client
   certificate, whether it may leave (a dry run: it refuses when leaving would
   cost the datastore its quorum).
3. Stop this node, then ask the agent to remove its datastore member and its
   Node. If that fails, start the node again as it was.
4. Forget the cluster (settings, certificates, credentials, state) and start
   a fresh single node with a new CA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from microkube.cluster.client import AgentClient, AgentError
from microkube.cluster.peers import load_agents
from microkube.config import node
from microkube.config.node import NodeConfig
from microkube.errors import MicrokubeError, NotRunningError, UsageError
from microkube.node.guard import require_set_up
from microkube.paths import Paths

Progress = Callable[[str], None]


class LeaveRefused(UsageError):
    """This node may not leave now; nothing was changed."""


@dataclass(frozen=True)
class Left:
    """What ``leave`` did: the name of the node, and what its control plane removed."""

    name: str
    removed: str  # "the Node mk-w1", or "" when the cluster had removed it already
    control_plane: str  # the agent that removed it, ip:port


def control_plane_peers(paths: Paths, config: NodeConfig) -> list[str]:
    """The agents of the other control planes, from this control plane's datastore members.

    Raises LeaveRefused when this node is its cluster's only control plane (with
    other nodes depending on it, or alone), MicrokubeError when its datastore
    does not answer.
    """
    from microkube.cluster.joinstring import format_address
    from microkube.cluster.roster import LocalRoster
    from microkube.services.base import NodeContext
    from microkube.services.cluster_agent import agent_port

    roster = LocalRoster(paths)
    members = roster.members()
    others = [m for m in members if m.name != config.node_name and m.ip != config.node_ip]
    if not any(not m.is_learner for m in others):
        dependents = sorted(str(n.get("metadata", {}).get("name", "")) for n in roster.nodes()
                            if n.get("metadata", {}).get("name") != config.node_name)
        if dependents:
            raise LeaveRefused(f"this node is the cluster's only voting control plane and "
                               f"{', '.join(dependents)} depend{'s' if len(dependents) == 1 else ''}"
                               " on it; remove them first ('microkube remove-node NAME' after "
                               "they left)")
        raise LeaveRefused("this node is not in a cluster with other nodes: there is nothing to "
                           "leave ('microkube reset' starts it over)")
    port = agent_port(NodeContext.load(paths))
    return [format_address(ipaddress.ip_address(m.ip), port)
            for m in others if not m.is_learner and m.ip]


def _ask(paths: Paths, agents: list[str], name: str, progress: Progress) -> AgentClient:
    """The first agent that says this node may leave. LeaveRefused with its reason if one
    refuses; MicrokubeError if none answers."""
    unreachable = []
    for address in agents:
        client = AgentClient.as_node(address, paths)
        try:
            client.post("/v1/leave", {"name": name, "dry_run": True})
        except AgentError as e:
            if e.status == 404:  # the cluster removed this node already
                return client
            if e.status == 0 or e.status >= 500:
                unreachable.append(str(e))
                continue
            raise LeaveRefused(str(e)) from None
        progress(f"the control plane at {address} agrees that {name} may leave")
        return client
    raise MicrokubeError("no control plane of this node's cluster answers, so it cannot be taken "
                         f"out ({'; '.join(unreachable) or 'none is known'}); once it is gone, "
                         "run 'microkube remove-node NAME --force' on a control plane and "
                         "'microkube reset' here")


def _removed(answer: Any) -> str:
    """"the datastore member x and the Node x" from the agent's ``removed`` answer."""
    if not isinstance(answer, dict):
        return ""
    parts = []
    if answer.get("member"):
        parts.append(f"the datastore member {answer['member']}")
    if answer.get("node"):
        parts.append(f"the Node {answer['node']}")
    return " and ".join(parts)


def leave(paths: Paths, progress: Progress) -> Left:
    """Take this node out of its cluster and start it again as a fresh single node.

    Returns what was removed. Raises NotSetUpError for a node never set up,
    NotRunningError for a control plane that is stopped,
    LeaveRefused (nothing changed) when it may not leave, MicrokubeError when
    no control plane answers or the removal failed (then the node is started
    again as it was).
    """
    from microkube.node.reset import forget_cluster
    from microkube.node.runtime import runtime_for

    require_set_up(paths)
    config = node.load(paths.state_file)
    name = config.node_name
    from microkube.datastore.settings import Datastore

    if not config.is_worker and Datastore(config.datastore).external:
        raise LeaveRefused(f"a control plane on the {config.datastore} datastore cannot leave "
                           "yet (a fresh single node would reuse the shared store): stop it and "
                           f"run 'microkube remove-node {name} --force' on another control plane")
    runtime = runtime_for(paths)
    if not config.is_worker and not runtime.is_running():
        # Else the line would be etcd's 'connection refused' on this node's own port.
        raise NotRunningError("microkube is not running: a control plane finds the other "
                              "control planes in its own datastore; start it ('microkube "
                              "start') and leave again")
    agents = load_agents(paths, config) if config.is_worker \
        else control_plane_peers(paths, config)
    client = _ask(paths, agents, name, progress)
    was_running = runtime.stop(progress)
    progress(f"{name} stopped; asking the control plane at {client.address} to remove it")
    try:
        what = _removed(client.post("/v1/leave", {"name": name}).get("removed"))
    except AgentError as e:
        if e.status != 404:
            if was_running:
                runtime.start(progress)
            raise MicrokubeError(f"{e}; {name} was started again as it was") from None
        what = ""
    progress(f"the control plane removed {what}" if what
             else f"the cluster had removed {name} already")
    forget_cluster(paths, progress)
    progress("starting a fresh single node with a new CA")
    runtime.start(progress)
    return Left(name, what, client.address)
