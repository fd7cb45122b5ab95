"""etcd's own clients, run against this node's datastore: etcdctl (a live member)
and etcdutl (snapshot files and data directories).

Both are built from the pinned etcd release (components.yaml). etcdctl talks
to the loopback client URL with the API server's client certificate.
Failures become one line: the last thing the tool said.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from microkube.errors import MicrokubeError
from microkube.paths import Paths


class EtcdToolError(MicrokubeError):
    """etcdctl or etcdutl failed; the message names what was being done."""


class EtcdTools:
    """etcdctl and etcdutl for the node at ``paths``."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        pki = paths.pki
        self.ctl_env = {
            **os.environ,
            "ETCDCTL_API": "3",
            "ETCDCTL_ENDPOINTS": f"https://127.0.0.1:{paths.ports.datastore_client}",
            "ETCDCTL_CACERT": str(pki.etcd_ca.cert),
            "ETCDCTL_CERT": str(pki.etcd_apiserver_client.cert),
            "ETCDCTL_KEY": str(pki.etcd_apiserver_client.key),
        }

    def _run(self, tool: str, argv: Sequence[str], what: str, timeout: float,
             env: dict[str, str] | None = None) -> bytes:
        binary = self.paths.binary(tool)
        try:
            proc = subprocess.run([str(binary), *argv], capture_output=True, env=env,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise EtcdToolError(f"{binary} is missing; build it with 'make components'") from None
        except subprocess.TimeoutExpired:
            raise EtcdToolError(f"{what}: {tool} did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise EtcdToolError(f"{what}: {lines[-1] if lines else f'{tool} exited {proc.returncode}'}")
        return proc.stdout

    def etcdctl(self, argv: Sequence[str], what: str, timeout: float = 60) -> bytes:
        """Run etcdctl against the live member; its stdout. EtcdToolError on failure."""
        return self._run("etcdctl", argv, what, timeout, env=self.ctl_env)

    def etcdutl(self, argv: Sequence[str], what: str, timeout: float = 300) -> bytes:
        """Run etcdutl (offline files only); its stdout. EtcdToolError on failure."""
        return self._run("etcdutl", argv, what, timeout)

    def snapshot_save(self, dest: Path) -> None:
        """Write a consistent snapshot of the live datastore to ``dest``."""
        self.etcdctl(["snapshot", "save", str(dest)], "taking the datastore snapshot",
                     timeout=600)

    def snapshot_status(self, snapshot: Path) -> dict[str, Any]:
        """etcdutl's facts about a snapshot file: hash, revision, totalKey, totalSize, version."""
        out = self.etcdutl(["snapshot", "status", str(snapshot), "-w", "json"],
                           "reading the snapshot")
        facts: dict[str, Any] = json.loads(out)
        return facts

    def server_version(self) -> str:
        """The version of the etcd member serving on loopback (e.g. ``3.6.16``)."""
        out = json.loads(self.etcdctl(["endpoint", "status", "-w", "json"],
                                      "asking etcd for its version"))
        return str(out[0]["Status"]["version"])

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        """Every key under ``prefix`` with its raw stored value, straight from the datastore."""
        out = json.loads(self.etcdctl(["get", prefix, "--prefix", "-w", "json"],
                                      f"reading {prefix} from the datastore"))
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
                for kv in out.get("kvs") or []}
