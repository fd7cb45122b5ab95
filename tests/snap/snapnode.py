"""A node run from the unpacked .snap by the fake snapd, driven as its user drives it.

``SnapNode`` is a :class:`tests.testnode.TestNode` whose ``microkube`` is the
snap's own ``$SNAP/bin/microkube`` with the environment snapd gives an app, so
the e2e helpers (kubectl, apply, the DNS responder...) work on it unchanged.
``snap_node`` makes one in a network namespace of its own and takes everything
it left away afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from microkube.services.cgroups import CGROUP_FS, remove_cgroup
from tests import netns
from tests.snap.fakesnapd import FakeSnapd
from tests.testnode import TestNode


@dataclass
class SnapNode(TestNode):
    __test__ = False
    snapd: FakeSnapd = field(kw_only=True)

    @property
    def env(self) -> dict[str, str]:
        return self.snapd.environment()

    @property
    def cli(self) -> list[str]:
        return [str(self.snapd.snap_dir() / "bin" / "microkube")]

    def ready(self) -> bool:
        """True if the API server answers and reports this node Ready."""
        proc = self.run("kubectl", "get", "nodes", "-o", "json", check=False, timeout=30)
        if proc.returncode != 0:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for n in json.loads(proc.stdout)["items"] for c in n["status"]["conditions"])

    def wait_ready(self, timeout: float = 240) -> float:
        """Seconds until the node is Ready; fails at once if a daemon app exited on its own."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            exited = self.snapd.exited()
            assert not exited, f"daemon apps exited: {exited}\n{self.snapd.log_tail()}"
            if self.ready():
                return time.monotonic() - start
            time.sleep(1)
        raise AssertionError(f"no Ready node after {timeout:.0f} s\n{self.snapd.log_tail()}")

    def fetch(self, url: str, timeout: float = 60) -> str:
        """GET from the node's network namespace with the snap's own Python.

        Retried: kube-proxy rejects a service's address until its endpoints are synced.
        """
        code = ("import urllib.request; "
                f"print(urllib.request.urlopen({url!r}, timeout=5).read().decode())")
        python = str(self.snapd.snap_dir() / "bin" / "python3")
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.run(self.in_netns([python, "-c", code]), capture_output=True,
                                  text=True, timeout=30)
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert proc.returncode == 0, proc.stderr.strip().splitlines()[-1]
        return proc.stdout

    def kubectl_apply_when_accounts_exist(self, manifest: str, timeout: float = 60) -> None:
        """kubectl apply, retried while the namespace has no service account yet.

        Ready comes before the controller manager has made it.
        """
        deadline = time.monotonic() + timeout
        while True:
            proc = self.run("kubectl", "apply", "-f", "-", input=manifest, check=False)
            if proc.returncode == 0 or time.monotonic() > deadline \
                    or "serviceaccount" not in proc.stderr:
                break
            time.sleep(1)
        assert proc.returncode == 0, proc.stderr

    def json(self, *args: str) -> Any:
        """`microkube ARGS` that prints JSON, parsed."""
        return json.loads(self.run(*args).stdout)


def require_root_and_tools() -> None:
    """Skip unless the test can run a node: root, nsenter, ip, iptables-save."""
    if os.geteuid() != 0:
        pytest.skip("running the snap's node needs root")
    for tool in ("nsenter", "ip", "iptables-save"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


@contextlib.contextmanager
def snap_node(root: Path, name: str, ip: str, options: dict[str, Any],
              cgroup_root: str) -> Iterator[SnapNode]:
    """A fake snapd under ``root`` with ``options`` set, in namespace ``mk-snap-<pid>`` with
    ``ip``; nothing installed yet. Afterwards every process of it is killed by pid, mounts
    undone, the namespace and ``root`` deleted, and ``cgroup_root`` (the kubelet's) removed."""
    with netns.network_namespace(f"{name}-{os.getpid()}", ip) as ns:
        fake = FakeSnapd(root=root, netns=ns, options=options)
        try:
            yield SnapNode(name=name, root=root, ip=ip, netns=ns, snapd=fake)
        finally:
            fake.kill_everything()
            remove_cgroup(cgroup_root)  # no pod runs now
            for hierarchy in CGROUP_FS.iterdir():
                with contextlib.suppress(OSError):  # absent, or another test node uses it
                    (hierarchy / "microkube-test").rmdir()
            shutil.rmtree(root, ignore_errors=True)
