"""A writer that records what the API acknowledged: ``python -m tests.ackwriter PREFIX``.

Run in a node's network namespace with the node's environment. It creates ConfigMaps
``PREFIX-00000``, ``PREFIX-00001``, ... in the default namespace, one after another as fast as
the API server takes them, as the node's admin, and prints ``ack NAME`` (flushed) only once
the API server answered 201 Created: etcd committed it. A refused or unanswered request
prints ``err NAME: why`` and the next name is tried. It runs until killed.
"""

from __future__ import annotations

import http.client
import json
import sys
import time

from microkube.config import node
from microkube.kube.api import admin_tls_context
from microkube.paths import Paths


def main() -> int:
    """Write until killed; returns only on bad arguments."""
    if len(sys.argv) != 2:
        print("usage: python -m tests.ackwriter PREFIX", file=sys.stderr)
        return 2
    prefix = sys.argv[1]
    paths = Paths.from_env()
    server = node.load(paths.state_file).api_url.removeprefix("https://")
    host, _, port = server.rpartition(":")
    context = admin_tls_context(paths)
    conn: http.client.HTTPSConnection | None = None
    i = 0
    while True:
        name = f"{prefix}-{i:05d}"
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "labels": {"ackwriter": prefix}},
                           "data": {"index": str(i)}})
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(host, int(port), timeout=5, context=context)
            conn.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            print(f"ack {name}" if resp.status == 201 else f"err {name}: HTTP {resp.status}",
                  flush=True)
        except (OSError, http.client.HTTPException) as e:
            print(f"err {name}: {e}", flush=True)
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.2)
        i += 1


if __name__ == "__main__":
    sys.exit(main())
