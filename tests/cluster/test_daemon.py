"""The agent as the supervisor runs it: the command from its argument file, and its probe."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from microkube.config import args, node
from microkube.services.base import NodeContext
from microkube.services.cluster_agent import ClusterAgent, agent_port
from microkube.services.registry import by_name, control_plane_daemons
from tests.cluster.conftest import free_port
from tests.clusternode import node_env, prepare_node_root


def test_the_agent_starts_last_and_stops_first() -> None:
    assert [d.name for d in control_plane_daemons()][-1] == "cluster-agent"
    assert isinstance(by_name("cluster-agent"), ClusterAgent)


def test_the_daemon_serves_from_its_argument_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "root"
    paths = prepare_node_root(root)
    ctx = NodeContext(paths, node.load(paths.state_file), environ=node_env(root))
    agent = ClusterAgent()
    assert agent_port(ctx) == paths.ports.cluster_agent  # the default file's ${CLUSTER_AGENT_PORT}
    port = free_port()
    args.set_flag(paths, agent.name, "port", str(port))
    args.set_flag(paths, agent.name, "bind-address", "127.0.0.1")
    assert agent_port(ctx) == port
    assert not agent.ready(ctx)
    proc = subprocess.Popen(agent.command(ctx), env=agent.environment(ctx),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not agent.ready(ctx):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the agent never became ready"
            time.sleep(0.1)
        proc.terminate()
        out = proc.communicate(timeout=agent.stop_timeout)[0].decode()
        assert proc.returncode == 0, out
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_agent_leaves_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    import json
    import os
    import signal
    import sys

    import psutil

    root = tmp_path / "root"
    paths = prepare_node_root(root)
    ctx = NodeContext(paths, node.load(paths.state_file), environ=node_env(root))
    agent = ClusterAgent()
    args.set_flag(paths, agent.name, "port", str(free_port()))
    args.set_flag(paths, agent.name, "bind-address", "127.0.0.1")
    # A stand-in for the supervisor: starts the agent, says its pid, waits.
    parent_code = ("import json, subprocess, sys; p = subprocess.Popen(json.loads(sys.argv[1])); "
                   "print(p.pid, flush=True); p.wait()")
    parent = subprocess.Popen([sys.executable, "-c", parent_code, json.dumps(agent.command(ctx))],
                              env=agent.environment(ctx), stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 20
        while not agent.ready(ctx):
            assert time.monotonic() < deadline, "the agent never became ready"
            time.sleep(0.1)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        psutil.Process(child).wait(timeout=10)  # raises TimeoutExpired if it stays
    finally:
        if psutil.pid_exists(child):
            os.kill(child, signal.SIGKILL)
