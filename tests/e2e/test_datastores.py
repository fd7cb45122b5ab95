"""A node on each datastore kine serves: SQLite, and real PostgreSQL and MariaDB servers.

Each database server is started by the test inside the node's own network namespace,
on its loopback, with a private data directory (tests/databases.py), and stopped
after. On each: the node comes up from a launch file, the seed functions work (a
Deployment behind its Service, a rolling update to a new version, a pod writing
through a claim bound to a PersistentVolume), a Secret is ciphertext in the SQL
table, objects survive a restart. External databases: a wrong password and a wrong host each fail ``start``
with one line naming the (masked) endpoint and leave no node behind; the corrected
file then works. SQLite: backup, delete, restore brings the objects back.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from microkube.datastore import encryption
from microkube.datastore.kine import sqlite_file
from microkube.paths import Paths
from tests.databases import PASSWORD, WRONG_HOST, mariadb, postgres
from tests.testnode import SNAP_TREE, TestNode, require_built, require_root_and_node_built
from tests.workloads import pvc_pod, web_deployment

pytestmark = pytest.mark.e2e

SECRET_KEY = "/registry/secrets/default/db-pass"


def _launch(tmp: Path, name: str, datastore: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"version": "0.1.0", "datastore": datastore}))
    return path


def _refused(node: TestNode, launch: Path, endpoint_shown: str) -> str:
    """Start with ``launch``, which must fail: one line naming the masked endpoint, no node."""
    proc = node.run("start", "--config", str(launch), check=False, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert endpoint_shown in lines[0] and PASSWORD not in lines[0] and "wrong" not in lines[0]
    assert not (node.root / "data" / "var" / "node.yaml").exists()
    assert not (node.root / "data" / "credentials" / "datastore.json").exists()
    return lines[0]


def _objects(node: TestNode) -> set[str]:
    found = node.kubectl("get", "deployment,service,configmap,secret", "-o", "name").split()
    return {o for o in found if o.rsplit("/", 1)[1] in ("web", "notes", "db-pass")}


EXPECTED = {"deployment.apps/web", "service/web", "configmap/notes", "secret/db-pass"}


def _serves(node: TestNode, body: str = "v2 from kine") -> bool:
    ip = node.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    out = node.run("kubectl", "exec", "deploy/web", "--", "wget", "-qO-", f"http://{ip}/",
                   check=False, timeout=30).stdout
    return body in out


def _static_volume(host_dir: Path) -> str:
    """A hostPath PersistentVolume and the claim ``notes`` that binds it (no storage class:
    the PV controller binds them, no provisioner needed)."""
    return f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: notes-pv}}
spec:
  capacity: {{storage: 64Mi}}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  hostPath: {{path: {host_dir}, type: DirectoryOrCreate}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: notes}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: notes-pv
  resources: {{requests: {{storage: 64Mi}}}}
"""


def _seed_functions(node: TestNode, tmp: Path) -> None:
    """A Deployment behind a Service serves, is rolled to a new version that serves, and a
    pod writes through a claim bound to a PersistentVolume."""
    node.apply(web_deployment("web", "v1 from kine", replicas=2))
    node.wait_for("web to serve", lambda: _serves(node, "v1 from kine"), timeout=120)
    first = node.kubectl("get", "rs", "-l", "app=web", "-o", "name").split()
    node.apply(web_deployment("web", "v2 from kine", replicas=2))
    node.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    node.wait_for("web to serve v2", lambda: _serves(node), timeout=60)
    rolled = node.kubectl("get", "rs", "-l", "app=web", "-o", "name").split()
    assert len(rolled) == 2 and set(first) < set(rolled), rolled
    assert node.kubectl("get", "deployment", "web", "-o",
                        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}") == "2"
    volume = tmp / "pv"
    node.apply(_static_volume(volume))
    node.apply(pvc_pod("writer", "echo kept on the volume > /data/note && sleep 100000"))
    node.wait_for("the claim bound and written", lambda: (volume / "note").exists() and
                  node.kubectl("get", "pvc", "notes", "-o", "jsonpath={.status.phase}") == "Bound",
                  timeout=120)
    assert (volume / "note").read_text() == "kept on the volume\n"
    node.kubectl("delete", "pod", "writer", "--wait=false")


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_a_node_on_the_datastore(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    require_root_and_node_built()
    require_built(SNAP_TREE / "bin" / "kine")
    started = time.monotonic()
    tmp = Path(tmp_path_factory.mktemp(f"ds-{kind}"))
    ip = {"sqlite": "10.213.31.2", "postgres": "10.213.32.2", "mysql": "10.213.33.2"}[kind]
    node = TestNode(name=f"mk-{kind}", root=tmp / "root", ip=ip, netns=f"mk-ds-{kind}-{os.getpid()}")
    node.create_netns()
    try:
        with contextlib.ExitStack() as stack:
            db = None
            if kind != "sqlite":
                db = stack.enter_context(postgres(node.netns) if kind == "postgres"
                                         else mariadb(node.netns))
                stack.callback(node.stop)  # the node lets go of the database before it stops
                shown = db.endpoint.replace(PASSWORD, "***")
                line = _refused(node, _launch(tmp, "bad-pw", db.wrong_password), shown)
                assert "password" in line.lower() or "denied" in line.lower(), line
                line = _refused(node, _launch(tmp, "bad-host", db.wrong_host),
                                shown.replace("127.0.0.1", WRONG_HOST))
                assert "refused" in line or "connect" in line, line
            good = _launch(tmp, "good", db.endpoint if db else "sqlite")
            node.run("start", "--config", str(good), "--wait-ready", "--timeout", "240",
                     timeout=300)
            st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
            assert st["datastore"]["kind"] == kind
            assert PASSWORD not in yaml.safe_dump(st)
            assert "etcd" not in st["daemons"] and st["daemons"]["kine"] == "ready"
            creds = node.root / "data" / "credentials" / "datastore.json"
            if db:
                assert creds.stat().st_mode & 0o777 == 0o600
            # Changing the datastore of a node that has one is refused with one line.
            other = _launch(tmp, "other", "etcd" if db else "mysql://u:p@127.0.0.1:3306/x")
            again = node.run("start", "--config", str(other), check=False)
            assert again.returncode == 2 and "changing a node's datastore" in again.stderr
            assert len(again.stderr.strip().splitlines()) == 1

            _seed_functions(node, tmp)
            node.kubectl("create", "configmap", "notes", "--from-literal=a=1")
            node.kubectl("create", "secret", "generic", "db-pass",
                         "--from-literal=password=hunter2-plain")

            # Secrets stay encrypted at rest on kine: the SQL table holds ciphertext.
            paths = Paths.from_env(node.env)
            if db:
                raw = db.raw_value(SECRET_KEY)
            else:
                with contextlib.closing(sqlite3.connect(sqlite_file(paths))) as conn:
                    raw = conn.execute("SELECT value FROM kine WHERE name = ? ORDER BY id DESC "
                                       "LIMIT 1", (SECRET_KEY,)).fetchone()[0]
            key = encryption.read_keys(paths.encryption_config)[0].name
            assert raw.startswith(encryption.ciphertext_prefix(key)), raw[:40]
            assert b"hunter2-plain" not in raw

            # The objects survive a restart.
            node.stop()
            node.start()
            assert _objects(node) == EXPECTED
            assert node.kubectl("get", "pvc", "notes", "-o", "jsonpath={.status.phase}") == "Bound"
            node.wait_for("web to serve after the restart", lambda: _serves(node), timeout=120)
            [kine] = node.named()["kine"]
            print(f"{kind}: kine PSS {kine.memory_full_info().pss / 2**20:.1f} MiB")

            if kind == "sqlite":
                backup = tmp / "backup.tar.gz"
                node.run("dbctl", "backup", "-o", str(backup))
                node.kubectl("delete", "deployment,service", "web")
                node.kubectl("delete", "configmap", "notes")
                assert _objects(node) == {"secret/db-pass"}
                node.stop()
                corrupt = tmp / "corrupt.tar.gz"
                corrupt.write_bytes(backup.read_bytes()[:-300])
                db_before = sqlite_file(paths).read_bytes()
                bad = node.run("dbctl", "restore", str(corrupt), check=False)
                assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
                assert sqlite_file(paths).read_bytes() == db_before  # untouched
                node.run("dbctl", "restore", str(backup))
                node.start()
                assert _objects(node) == EXPECTED
                node.wait_for("web to serve after the restore", lambda: _serves(node),
                              timeout=120)
    finally:
        node.destroy()
    print(f"{kind}: {time.monotonic() - started:.0f} s")
