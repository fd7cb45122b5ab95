"""A single node loses power in the middle of writes: every write the API acknowledged is
there after ``microkube start``, and so are the node's pods.

The node is this module's own (tests/e2e/conftest.py); a writer (tests/ackwriter.py) in the
node's namespace creates ConfigMaps and records each one the API server acknowledged; every
process of the node is killed at once by pid (tests/powerloss.py), the supervisor and the
container shims included.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import psutil

from microkube.paths import CHECKOUT
from tests import powerloss
from tests.testnode import TestNode


def _running_etcd_flags(node: TestNode) -> list[str]:
    for p in node.named().get("etcd", []):
        with contextlib.suppress(psutil.Error):
            return p.cmdline()
    raise AssertionError("no etcd process runs")


def test_acknowledged_writes_survive_a_power_loss_in_the_middle_of_them(node: TestNode) -> None:
    flags = _running_etcd_flags(node)
    assert not [f for f in flags if "unsafe" in f or "force-new-cluster" in f], flags
    powerloss.seed(node, configmaps=20)
    seeded = powerloss.look(node)

    writer = subprocess.Popen(node.in_netns([sys.executable, "-m", "tests.ackwriter", "ack"]),
                              env=node.env, cwd=CHECKOUT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        acked: list[str] = []
        for line in writer.stdout:
            if line.startswith("ack "):
                acked.append(line.split()[1])
            if len(acked) >= 30:  # well in the middle of writes: the writer never pauses
                break
        killed = powerloss.power_cut([node])
        time.sleep(1)  # the writer sees the API go and records nothing more as acknowledged
    finally:
        psutil.Process(writer.pid).kill()
        rest, _ = writer.communicate(timeout=10)
    acked += [line.split()[1] for line in rest.splitlines() if line.startswith("ack ")]

    on = powerloss.power_on([node])
    ready_s = powerloss.wait_all_ready([node], on.began, timeout=180)
    print(f"\nsingle node power loss ({killed} processes killed, {len(acked)} writes "
          f"acknowledged): Ready {ready_s:.1f} s after start")

    found = {c["metadata"]["name"] for c in node.kubectl_json(
        "get", "configmaps", "-l", "ackwriter=ack")["items"]}
    assert [name for name in acked if name not in found] == []
    assert powerloss.look(node).lost(seeded) == []
    node.wait_for("the seed's containers running again",
                  lambda: powerloss.workloads_back(node, on.began, seeded), timeout=180)
