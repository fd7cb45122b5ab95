"""What ``microkube status`` reports, gathered quickly and without kubectl."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from microkube.errors import MicrokubeError, NotRunningError
from microkube.kube.api import KubeApi
from microkube.node.runtime import runtime_for
from microkube.node.runtime.base import NOT_RUNNING
from microkube.paths import Paths
from microkube.services.base import NodeContext


@dataclass
class NodeStatus:
    running: bool
    ready: bool = False
    node_name: str = ""
    api_server: str = ""
    daemons: dict[str, str] = field(default_factory=dict)
    datastore_members: list[str] = field(default_factory=list)
    addons: dict[str, list[str]] = field(default_factory=lambda: {"enabled": [], "disabled": []})
    cert_earliest: str = ""
    cert_days_left: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "microkube": {"running": self.running, "ready": self.ready},
            "node": self.node_name,
            "api-server": self.api_server,
            "high-availability": {"enabled": len(self.datastore_members) >= 3,
                                  "nodes": self.datastore_members},
            "daemons": self.daemons,
            "certificates": {"earliest": self.cert_earliest, "days-left": self.cert_days_left},
            "addons": self.addons,
        }


def gather(paths: Paths) -> NodeStatus:
    runtime = runtime_for(paths)
    states = runtime.daemon_states()
    if states is None:
        raise NotRunningError(NOT_RUNNING)
    ctx = NodeContext.load(paths)
    st = NodeStatus(running=True, node_name=ctx.node.node_name, api_server=ctx.node.api_url)
    st.daemons = states
    st.datastore_members = [f"{ctx.node.node_ip}:{paths.ports.datastore_peer}"]
    st.cert_earliest, st.cert_days_left = runtime.certificate_summary()
    from microkube.addons.listing import status_lists

    st.addons = status_lists(paths, ctx.node.substitutions())
    # Ready means pods can run: every daemon serves (flannel included) and the Node says Ready.
    if all(s == "ready" for s in states.values()):
        try:
            st.ready = KubeApi.for_admin(paths, timeout=1.0).node_ready(ctx.node.node_name)
        except MicrokubeError:
            st.ready = False
    return st


def wait_ready(paths: Paths, timeout: float, progress: Callable[[str], None]) -> NodeStatus:
    """Wait until the node is Ready, printing a line whenever the picture changes."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        st = gather(paths)
        if st.ready:
            return st
        pending = sorted(n for n, s in st.daemons.items() if s != "ready")
        line = ("waiting for " + ", ".join(pending)) if pending else "waiting for the node to be Ready"
        if line != last:
            progress(line)
            last = line
        if time.monotonic() >= deadline:
            raise MicrokubeError(f"the node was not Ready within {timeout:.0f} s ({line})")
        time.sleep(0.25)
