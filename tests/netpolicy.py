"""What the NetworkPolicy tests share: busybox server and client pods, and probing who
reaches what.

A probe round is one ``kubectl exec`` per client: every target is fetched in parallel,
each bounded by busybox's ``timeout`` (Debian's busybox wget crashes with ``-T``), and the
client answers with the labels of the targets that answered HTTP. Targets are pod IPs,
not Services, so no address translation stands between a client and the policy.
"""

from __future__ import annotations

from collections.abc import Callable

import yaml

from microkube.images.names import BUSYBOX_IMAGE
from tests.testnode import TestNode

PROBE_SECONDS = 2
# httpd on 8080 in the foreground and on 9090 in the background, both serving "served".
SERVE = ("mkdir -p /www && echo served > /www/index.html && httpd -p 9090 -h /www && "
         "exec httpd -f -p 8080 -h /www")
SLEEP = "exec sleep 100000"


def namespace(name: str, labels: dict[str, str]) -> str:
    """A Namespace manifest (YAML text) named ``name`` with ``labels``."""
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": name, "labels": labels}})


def pod(name: str, ns: str, labels: dict[str, str], command: str,
        node: str | None = None) -> str:
    """A busybox Pod manifest (YAML text) running ``command`` in sh; pinned to Node ``node``
    when given. The image is the local one, never pulled."""
    spec: dict[str, object] = {"terminationGracePeriodSeconds": 0, "containers": [{
        "name": "main", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
        "command": ["sh", "-c", command]}]}
    if node:
        spec["nodeName"] = node
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": ns, "labels": labels},
                           "spec": spec})


def pod_ip(node: TestNode, ns: str, name: str) -> str:
    """The IP of pod ``name`` in ``ns``, asked of ``node``'s API server."""
    return node.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.podIP}").strip()


def reach(node: TestNode, client: str, ns: str, targets: dict[str, str]) -> set[str]:
    """The labels of ``targets`` (label -> "host:port") that pod ``client`` in ``ns`` gets an
    HTTP answer from, within PROBE_SECONDS each, probed in parallel."""
    script = " ".join(
        f"(timeout {PROBE_SECONDS} wget -qO- http://{addr}/ >/dev/null 2>&1 && echo {label}) &"
        for label, addr in targets.items()) + " wait"
    out = node.kubectl("exec", client, "-n", ns, "--", "sh", "-c", script, timeout=30)
    return set(out.split())


def expect(node: TestNode, matrix: Callable[[], dict[str, set[str]]],
           expected: dict[str, set[str]], what: str, timeout: float = 45) -> None:
    """Wait until ``matrix()`` (client -> the targets it reaches) is exactly ``expected``.

    The controller applies a change within seconds; ``timeout`` s bounds the wait, and
    the AssertionError raised then names ``what`` and shows the last matrix seen.
    """
    def check() -> bool:
        seen = matrix()
        if seen != expected:
            raise AssertionError(f"reached: {seen}")
        return True

    node.wait_for(what, check, timeout=timeout, every=1)
