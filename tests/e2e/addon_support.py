"""Helpers the addon end-to-end tests share: a node of their own, and probes run inside it.

Each addon test module starts its own node (its own network namespace, root
and name), so enabling addons never disturbs the node the other e2e tests use.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testnode import SNAP_TREE, TestNode, require_built, require_root_and_node_built

ADDON_NODE_IP = "10.215.0.2"


def require_node_and_images(*images: str) -> None:
    """Skip unless root and built; fail when the built tree lacks a node part or addon image."""
    require_root_and_node_built()
    require_built(*(SNAP_TREE / "images" / "addons" / f"{i}.tar" for i in images))


def addon_node(tmp_path_factory: pytest.TempPathFactory, tag: str) -> Iterator[TestNode]:
    root = Path(tmp_path_factory.mktemp(f"addons-{tag}")) / "root"
    node = TestNode(name=f"mk-addons-{tag}", root=root, ip=ADDON_NODE_IP,
                    netns=f"mk-addons-{tag}-{os.getpid()}")
    node.create_netns()
    try:
        node.start()
        yield node
    finally:
        node.destroy()


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def addon_state(node: TestNode) -> dict[str, Any]:
    path = node.root / "data" / "var" / "addons.yaml"
    if not path.exists():
        return {}
    return dict((yaml.safe_load(path.read_text()) or {}).get("enabled", {}))


def missing_objects(node: TestNode, objects: list[dict[str, Any]]) -> list[str]:
    """Of the recorded objects, the ones the cluster no longer has."""
    gone = []
    for o in objects:
        args = ["get", f"{o['kind']}.{o['api_version'].split('/')[0]}"
                if "/" in o["api_version"] else o["kind"], o["name"], "--ignore-not-found",
                "-o", "name"]
        if o.get("namespace"):
            args += ["-n", o["namespace"]]
        if not node.kubectl(*args).strip():
            gone.append(f"{o['kind']}/{o['name']}")
    return gone


def assert_all_gone(node: TestNode, objects: list[dict[str, Any]]) -> None:
    """Every one of the recorded ``objects`` (there must be some) is gone from the cluster."""
    assert objects, "no objects were recorded for the addon"
    assert sorted(missing_objects(node, objects)) == sorted(f"{o['kind']}/{o['name']}"
                                                            for o in objects)


def status_addons(node: TestNode) -> dict[str, list[str]]:
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    return {k: [line.split()[0] for line in v] for k, v in st["addons"].items()}


def in_node_python(node: TestNode, code: str, timeout: float = 60) -> str:
    """Run a Python snippet inside the node's network namespace; its stdout."""
    proc = subprocess.run(node.in_netns([sys.executable, "-c", code]), capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(proc.stderr.strip().splitlines()[-1:] or proc.returncode)
    return proc.stdout


def http_get(node: TestNode, url: str, host: str | None = None, timeout: float = 5,
             verify_ca: str | None = None) -> tuple[int, str]:
    """(status, body) of a GET made from inside the node's network namespace."""
    code = f"""
import json, ssl, urllib.request, urllib.error
req = urllib.request.Request({url!r}, headers={json.dumps({"Host": host} if host else {})})
ctx = ssl.create_default_context(cafile={verify_ca!r}) if {verify_ca!r} else ssl._create_unverified_context()
if {verify_ca!r}:
    ctx.check_hostname = False
try:
    with urllib.request.urlopen(req, timeout={timeout}, context=ctx) as r:
        print(json.dumps([r.status, r.read().decode(errors="replace")]))
except urllib.error.HTTPError as e:
    print(json.dumps([e.code, e.read().decode(errors="replace")]))
"""
    status, body = json.loads(in_node_python(node, code, timeout=timeout + 10))
    return int(status), str(body)


class DnsResponder:
    """The test's own upstream resolver, listening on the node's IP inside its namespace."""

    def __init__(self, node: TestNode, records: dict[str, str]) -> None:
        self.node = node
        self.records = records
        self.proc: subprocess.Popen[str] | None = None
        self.log = node.root.parent / "dns-responder.log"

    def __enter__(self) -> DnsResponder:
        argv = [sys.executable, "-m", "tests.e2e.dns_responder", "--listen", self.node.ip]
        for name, ip in self.records.items():
            argv += ["--record", f"{name}={ip}"]
        out = self.log.open("w")
        self.proc = subprocess.Popen(self.node.in_netns(argv), stdout=out, stderr=subprocess.STDOUT,
                                     text=True, cwd=str(Path(__file__).resolve().parents[2]))
        deadline = time.monotonic() + 10
        while "listening" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the DNS responder did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return self

    def queries(self) -> list[str]:
        return [ln.split()[1] for ln in self.log.read_text().splitlines() if ln.startswith("query ")]

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()  # our own child, by its pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            if self.proc.poll() is None:
                self.proc.kill()
