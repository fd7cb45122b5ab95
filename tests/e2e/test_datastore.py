"""The datastore on a real node: Secrets encrypted at rest, key rotation stopped halfway
and resumed, backup and restore.

The tests share one node and run in file order; each leaves it running.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import pytest

from microkube.datastore import encryption
from microkube.datastore.etcdtools import EtcdTools
from microkube.paths import Paths
from tests.testnode import TestNode, wait_for

pytestmark = pytest.mark.e2e


def _paths(node: TestNode) -> Paths:
    return Paths.from_env(node.env)


def _raw(node: TestNode, key: str) -> bytes:
    """A key's stored bytes, read with etcdctl straight from the node's etcd."""
    paths = _paths(node)
    out = subprocess.run(node.in_netns([str(paths.binary("etcdctl")), "get", key, "-w", "json"]),
                         env=EtcdTools(paths).ctl_env, capture_output=True, check=True).stdout
    kvs = json.loads(out).get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else b""


def _secret_value(node: TestNode, name: str) -> str:
    data = node.kubectl("get", "secret", name, "-o", "jsonpath={.data.password}")
    return base64.b64decode(data).decode()


def _create_secret(node: TestNode, name: str, value: str) -> None:
    node.kubectl("create", "secret", "generic", name, f"--from-literal=password={value}")


def _key_names(node: TestNode) -> list[str]:
    return [k.name for k in encryption.read_keys(_paths(node).encryption_config)]


def test_secrets_are_ciphertext_in_the_datastore_and_plain_through_the_api(
        node: TestNode) -> None:
    paths = _paths(node)
    assert paths.encryption_config.stat().st_mode & 0o777 == 0o600
    _create_secret(node, "db-pass", "hunter2-plain")
    raw = _raw(node, "/registry/secrets/default/db-pass")
    assert raw.startswith(encryption.ciphertext_prefix(_key_names(node)[0])), raw[:40]
    assert b"hunter2-plain" not in raw
    assert _secret_value(node, "db-pass") == "hunter2-plain"
    # A ConfigMap is not encrypted: the check above is not vacuous.
    node.kubectl("create", "configmap", "plain-cm", "--from-literal=k=visible-value")
    assert b"visible-value" in _raw(node, "/registry/configmaps/default/plain-cm")
    status = node.run("secrets-encryption", "status").stdout
    assert "Encryption Status: Enabled" in status and "Current Rotation Stage: start" in status
    secret = encryption.read_keys(paths.encryption_config)[0].secret
    assert secret not in status


def test_key_rotation_stopped_halfway_finishes_after_a_restart(node: TestNode) -> None:
    paths = _paths(node)
    [old] = _key_names(node)
    for i in range(3):
        _create_secret(node, f"rot-{i}", f"value-{i}")
    # Rotate, and kill the command once the new key is readable (stage 'rotate' saved).
    proc = subprocess.Popen(node.in_netns([*node.cli, "secrets-encryption", "rotate-keys"]),
                            env=node.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for("the rotation to reach stage 'rotate'",
                 lambda: '"rotate"' in paths.encryption_rotation_file.read_text(),
                 timeout=240, every=0.05, tolerate=(FileNotFoundError,))
    finally:
        proc.kill()
        proc.wait()
    assert old in _key_names(node) and len(_key_names(node)) == 2
    node.stop()
    node.start()
    assert "Current Rotation Stage: rotate" in node.run("secrets-encryption", "status").stdout
    done = node.run("secrets-encryption", "rotate-keys", timeout=600)
    assert "resuming the key rotation at stage 'rotate'" in done.stderr
    [new] = _key_names(node)
    assert new != old
    prefix = encryption.ciphertext_prefix(new)
    for name in ["db-pass", "rot-0", "rot-1", "rot-2"]:
        assert _raw(node, f"/registry/secrets/default/{name}").startswith(prefix), name
    assert _secret_value(node, "db-pass") == "hunter2-plain"
    assert [_secret_value(node, f"rot-{i}") for i in range(3)] == ["value-0", "value-1", "value-2"]
    assert not paths.encryption_rotation_file.exists()


def test_backup_then_restore_brings_back_exactly_the_backed_up_objects(
        node: TestNode, tmp_path: Path) -> None:
    node.kubectl("create", "configmap", "keep-a", "--from-literal=k=a")
    node.kubectl("create", "configmap", "keep-b", "--from-literal=k=b")
    _create_secret(node, "keep-secret", "s3cret-value")
    backup = tmp_path / "node.tar.gz"
    started = time.monotonic()
    out = node.run("dbctl", "backup", "-o", str(backup)).stdout
    backup_s = time.monotonic() - started
    assert "backup written to" in out and backup.stat().st_mode & 0o777 == 0o600

    node.kubectl("delete", "configmap", "keep-a")
    node.kubectl("delete", "secret", "keep-secret")
    node.kubectl("create", "configmap", "after-backup", "--from-literal=k=c")

    refused = node.run("dbctl", "restore", str(backup), check=False)
    assert refused.returncode != 0 and "stop it first" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    node.stop()
    datastore = _paths(node).datastore_dir
    before = sorted(p.name for p in datastore.rglob("*"))
    corrupt = tmp_path / "corrupt.tar.gz"
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    foreign = tmp_path / "foreign.tar.gz"
    foreign.write_text("not a backup\n")
    for bad in (corrupt, foreign):
        r = node.run("dbctl", "restore", str(bad), check=False)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in datastore.rglob("*")) == before

    started = time.monotonic()
    node.run("dbctl", "restore", str(backup))
    restore_s = time.monotonic() - started
    node.start()
    names = node.kubectl("get", "configmaps", "-o", "jsonpath={.items[*].metadata.name}").split()
    assert {"keep-a", "keep-b", "plain-cm"} <= set(names) and "after-backup" not in names
    assert _secret_value(node, "keep-secret") == "s3cret-value"
    assert _secret_value(node, "db-pass") == "hunter2-plain"
    print(f"backup {backup_s:.1f} s, restore {restore_s:.1f} s, {backup.stat().st_size} bytes")
