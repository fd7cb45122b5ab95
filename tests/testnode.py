"""A real microkube node for tests, in a network namespace the test makes itself.

The node gets its own root directory, network namespace (so its ports,
iptables rules and links never touch the host's), cgroup subtree and
node name. Nothing it runs can reach beyond the namespace: its only
interface is a veth pair inside it, and containerd's registry mirror points at a
loopback port where nothing listens, so no pull ever leaves.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from microkube.paths import CHECKOUT
from microkube.services.cleanup import mounts_below
from tests import netns

# The read-only tree the node runs from: the checkout's build, unless MICROKUBE_SNAP says otherwise.
SNAP_TREE = Path(os.environ.get("MICROKUBE_SNAP") or CHECKOUT / "build" / "snap")


# What a node needs from the tree `make components` builds.
NODE_BINARIES = ("kube", "containerd", "runc", "etcd", "ctr", "containerd-shim-runc-v2", "apilb")
NODE_PARTS = (*(SNAP_TREE / "bin" / n for n in NODE_BINARIES), SNAP_TREE / "images" / "pause.tar")


def components_built() -> bool:
    """True when the tree holds every part a node needs."""
    return all(p.exists() for p in NODE_PARTS)


def require_built(*parts: Path, tree: Path = SNAP_TREE) -> None:
    """Skip the calling test when ``tree`` was never built; fail it when any of ``parts`` is missing.

    A tree that is there but lacks a part is a build regression, not a reason to skip.
    """
    if not (tree / "bin").is_dir():
        pytest.skip(f"components are not built in {tree}; run 'make components'")
    missing = [str(p.relative_to(tree)) if p.is_relative_to(tree) else str(p)
               for p in parts if not p.exists()]
    if missing:
        pytest.fail(f"the built tree {tree} lacks {', '.join(missing)}: a build regression "
                    "(run 'make components')", pytrace=False)


def require_root_and_node_built() -> None:
    """Skip unless root; then require every part a node needs (see require_built)."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    require_built(*NODE_PARTS)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 1.0,
             tolerate: tuple[type[BaseException], ...] = ()) -> Any:
    """Call ``check`` every ``every`` s until it returns something true, and return that.

    Exceptions in ``tolerate`` count as "not yet"; others propagate. Raises
    AssertionError naming ``what`` after ``timeout`` s: a bound, not a timing claim.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except tolerate as e:
            last = f"{type(e).__name__}: {e}"[:500]
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class TestNode:
    __test__ = False  # a helper, not a test class
    name: str
    root: Path
    ip: str
    netns: str
    extra_env: dict[str, str] = field(default_factory=dict)
    # On a test bridge (tests/multinode.py): the bridge's namespace and this node's port on it.
    bridge_ns: str | None = None
    bridge_port: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "MICROKUBE_"))}
        env.update({
            "MICROKUBE_SNAP": str(SNAP_TREE),
            "MICROKUBE_ROOT": str(self.root),
            "MICROKUBE_NODE_NAME": self.name,
            "MICROKUBE_NODE_IP": self.ip,
            "MICROKUBE_REGISTRY_MIRROR": "http://127.0.0.1:5999",
            "MICROKUBE_CGROUP_ROOT": f"/microkube-test/{self.name}",
        })
        env.update(self.extra_env)
        return env

    # --- the network namespace -----------------------------------------------------
    def create_netns(self) -> None:
        if self.bridge_ns is None:
            netns.create(self.netns, self.ip)
        else:
            netns.create_on_bridge(self.netns, self.ip, self.bridge_ns, self.bridge_port)

    def delete_netns(self) -> None:
        netns.delete(self.netns)

    def in_netns(self, argv: list[str]) -> list[str]:
        return netns.in_netns(self.netns, argv)

    # --- running the CLI -----------------------------------------------------------
    @property
    def cli(self) -> list[str]:
        """The command that runs `microkube` for this node: the checkout's."""
        return [sys.executable, "-m", "microkube"]

    def run(self, *args: str, check: bool = True, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = self.in_netns([*self.cli, *args])
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"microkube {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        return self.run("kubectl", *args, check=check, timeout=timeout).stdout

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def apply(self, manifest: str) -> None:
        self.run("kubectl", "apply", "-f", "-", input=manifest)

    # --- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 240, config: Path | None = None) -> None:
        """``microkube start --wait-ready``, with the launch file ``config`` if given."""
        launch = ["--config", str(config)] if config is not None else []
        self.run("start", "--wait-ready", "--timeout", str(int(timeout)), *launch,
                 timeout=timeout + 30)

    def stop(self) -> None:
        self.run("stop", check=False, timeout=120)

    def supervisor_state(self) -> dict[str, Any] | None:
        path = self.root / "common" / "run" / "supervisor.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    @property
    def cgroup_root(self) -> str:
        """The cgroup subtree the node's pods live in (its kubelet's cgroupRoot)."""
        return self.env["MICROKUBE_CGROUP_ROOT"]

    def processes(self) -> list[psutil.Process]:
        """This node's processes: anything run from our tree naming its root, their
        descendants (the supervisor's daemons, containerd's shims, the pods' processes),
        and every process in the node's pod cgroup subtree."""
        from microkube.services.cgroups import cgroup_pids

        found: dict[int, psutil.Process] = {}
        for pid in cgroup_pids(self.cgroup_root):
            with contextlib.suppress(psutil.Error):
                found[pid] = psutil.Process(pid)
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info.get("cmdline") or []
            with contextlib.suppress(psutil.Error):
                if any(str(self.root) in part for part in cmd) or (
                        cmd[1:3] == ["-m", "microkube.node.supervise"]
                        and p.environ().get("MICROKUBE_ROOT") == str(self.root)):
                    found[p.pid] = p
                    found.update((c.pid, c) for c in p.children(recursive=True))
        return list(found.values())

    def named(self) -> dict[str, list[psutil.Process]]:
        """This node's processes by name; one that exits while it is being read is left out
        (a probe or a hook may come and go between the listing and the read)."""
        by_name: dict[str, list[psutil.Process]] = {}
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                by_name.setdefault(p.name(), []).append(p)
        return by_name

    def mounts(self) -> list[Path]:
        return mounts_below(self.root)

    def wait_for(self, what: str, check: Any, timeout: float = 120, every: float = 1.0) -> Any:
        """wait_for(), riding out the errors of a node that is still settling."""
        return wait_for(what, check, timeout, every,
                        tolerate=(AssertionError, subprocess.SubprocessError, ValueError))

    def destroy(self) -> None:
        """Stop, then remove everything the node left: processes by pid, mounts, netns, files."""
        self.stop()
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()
        for point in self.mounts():  # deepest first
            subprocess.run(["umount", "-l", point], capture_output=True)
        self.delete_netns()
        shutil.rmtree(self.root, ignore_errors=True)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (hierarchy / "microkube-test").rmdir()  # only once no test node uses it
