"""Several real microkube nodes on one machine, on a LAN the test makes.

The LAN is a bridge in a network namespace of its own; each node is a
:class:`tests.testnode.TestNode` in its own namespace, attached to that bridge
by a veth pair, with its own root, name, address (10.214.0.0/24, private and
only inside these namespaces) and cgroup subtree. Nothing reaches the host's
network. :meth:`Cluster.destroy` ends every process by pid, unmounts, and
deletes every namespace and link (a namespace's links go with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests import netns
from tests.testnode import SNAP_TREE, TestNode

SUBNET = "10.214.0"


@dataclass
class Cluster:
    """The bridge and the nodes on it; nodes are made with :meth:`add` and not started."""

    base: Path  # a temporary directory: one root per node below it
    tag: str = field(default_factory=lambda: str(os.getpid()))
    nodes: list[TestNode] = field(default_factory=list)

    @property
    def bridge_ns(self) -> str:
        return f"mk-lan-{self.tag}"

    def create(self) -> None:
        netns.create_bridge(self.bridge_ns)

    def add(self, name: str, env: dict[str, str] | None = None) -> TestNode:
        """A node named ``name`` on the bridge, at the next free address; its namespace is made."""
        index = len(self.nodes) + 2
        node = TestNode(name=name, root=self.base / name / "root", ip=f"{SUBNET}.{index}",
                        netns=f"mk-{name}-{self.tag}", extra_env=dict(env or {}),
                        bridge_ns=self.bridge_ns, bridge_port=f"p{index}-{self.tag}"[:15])
        self.nodes.append(node)
        node.create_netns()
        return node

    def destroy(self) -> None:
        """Stop every node at once (a graceful stop takes seconds a node, and each node's
        supervisor stops only its own daemons and pods), then tear each down, newest first,
        then the bridge's namespace."""
        from concurrent.futures import ThreadPoolExecutor

        def stop(node: TestNode) -> None:
            with contextlib.suppress(Exception):
                node.stop()

        with ThreadPoolExecutor(max_workers=max(1, len(self.nodes))) as pool:
            list(pool.map(stop, self.nodes))
        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                node.destroy()
        netns.delete(self.bridge_ns)

    # --- joining -------------------------------------------------------------------------
    @staticmethod
    def join_string(control_plane: TestNode, *extra: str) -> str:
        """A fresh join string from ``control_plane``'s add-node, for its node address."""
        doc = json.loads(control_plane.run("add-node", "--format", "json", *extra).stdout)
        found: str = next(s for s in doc["join_strings"] if s.startswith(f"{control_plane.ip}:"))
        return found

    @staticmethod
    def join_worker(worker: TestNode, join_string: str, timeout: float = 180,
                    check: bool = True) -> subprocess.CompletedProcess[str]:
        return worker.run("join", join_string, "--worker", "--timeout", str(int(timeout)),
                          check=check, timeout=timeout + 30)


@dataclass
class TimedJoin:
    """One ``microkube join``: its exit code, output, and when each progress line came."""

    returncode: int
    seconds: float  # the whole command
    lines: list[tuple[float, str]]  # (seconds since the join began, stderr line)
    stdout: str

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines) + "\n" + self.stdout

    def at(self, fragment: str) -> float | None:
        """Seconds from the join's start to the first progress line containing ``fragment``."""
        return next((t for t, line in self.lines if fragment in line), None)


def timed_join(node: TestNode, join_string: str, *extra: str,
               timeout: float = 240) -> TimedJoin:
    """Run ``microkube join`` on ``node``, timing each progress line; killed after ``timeout`` s."""
    import threading
    import time

    argv = node.in_netns([*node.cli, "join", join_string, *extra, "--timeout", str(int(timeout))])
    began = time.monotonic()
    proc = subprocess.Popen(argv, env=node.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killer = threading.Timer(timeout + 30, proc.kill)
    killer.start()
    try:
        assert proc.stderr is not None and proc.stdout is not None
        lines = [(time.monotonic() - began, line.rstrip("\n")) for line in proc.stderr]
        stdout = proc.stdout.read()
        proc.wait()
    finally:
        killer.cancel()
    return TimedJoin(proc.returncode, time.monotonic() - began, lines, stdout)


def kill_machine(node: TestNode) -> None:
    """The node's machine dies: each of its processes is killed at once (SIGKILL), by pid."""
    for p in node.processes():
        with contextlib.suppress(psutil.Error):
            p.kill()
    for p in node.processes():
        with contextlib.suppress(psutil.Error):
            p.wait(10)


def replace_machine(node: TestNode) -> None:
    """A new machine with the same name and address: the old one dies, and nothing of its disk
    is left (its mounts go, its root is removed)."""
    kill_machine(node)
    for point in node.mounts():
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(node.root)


def kubectl_as(node: TestNode, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundled kubectl with ``kubeconfig``, run in ``node``'s namespace."""
    argv = node.in_netns([str(SNAP_TREE / "bin" / "kubectl"), f"--kubeconfig={kubeconfig}", *args])
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def cluster(base: Path) -> Iterator[Cluster]:
    """A :class:`Cluster` for the with-block; everything it made is gone afterwards."""
    c = Cluster(base)
    try:
        c.create()
        yield c
    finally:
        c.destroy()


@contextlib.contextmanager
def control_plane_and_worker(base: Path, cp_name: str, worker_name: str,
                             env: dict[str, str] | None = None
                             ) -> Iterator[tuple[Cluster, TestNode, TestNode]]:
    """A started control plane and a worker joined to it (both with ``env``), on a LAN of
    their own that is gone after the with-block."""
    with cluster(base) as lan:
        cp = lan.add(cp_name, env)
        worker = lan.add(worker_name, env)
        cp.start()
        lan.join_worker(worker, lan.join_string(cp))
        yield lan, cp, worker
