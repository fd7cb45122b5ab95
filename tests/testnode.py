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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from microkube.paths import CHECKOUT
from microkube.services.cleanup import mounts_below
from tests import netns

# The read-only tree the node runs from: the checkout's build, unless MICROKUBE_SNAP says otherwise.
SNAP_TREE = Path(os.environ.get("MICROKUBE_SNAP") or CHECKOUT / "build" / "snap")


def components_built() -> bool:
    need = ["kube", "containerd", "runc", "etcd", "flanneld", "ctr", "containerd-shim-runc-v2"]
    return all((SNAP_TREE / "bin" / n).exists() for n in need) and any(
        (SNAP_TREE / "images").glob("pause*.tar"))


@dataclass
class TestNode:
    __test__ = False  # a helper, not a test class
    name: str
    root: Path
    ip: str
    netns: str
    extra_env: dict[str, str] = field(default_factory=dict)

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
        netns.create(self.netns, self.ip)

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
    def start(self, timeout: float = 240) -> None:
        self.run("start", "--wait-ready", "--timeout", str(int(timeout)), timeout=timeout + 30)

    def stop(self) -> None:
        self.run("stop", check=False, timeout=120)

    def supervisor_state(self) -> dict[str, Any] | None:
        path = self.root / "common" / "run" / "supervisor.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    def processes(self) -> list[psutil.Process]:
        """This node's processes: anything run from our tree naming its root."""
        found: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info.get("cmdline") or []
            with contextlib.suppress(psutil.Error):
                if any(str(self.root) in part for part in cmd) or (
                        cmd[1:3] == ["-m", "microkube.node.supervise"]
                        and p.environ().get("MICROKUBE_ROOT") == str(self.root)):
                    found[p.pid] = p
                    found.update((c.pid, c) for c in p.children(recursive=True))
        return list(found.values())

    def mounts(self) -> list[Path]:
        return mounts_below(self.root)

    def wait_for(self, what: str, check: Any, timeout: float = 120, every: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError, subprocess.SubprocessError, ValueError):
                last = check()
                if last:
                    return last
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})")

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
