"""kubelite's spec: every part's own argument file, read again at each start."""

from __future__ import annotations

import json

import pytest

from microkube.errors import UsageError
from microkube.node import setup
from microkube.paths import Paths
from microkube.services.kubernetes import (
    CONTROL_PLANE_PARTS,
    NETWORK_PARTS,
    Kubelite,
    WorkerKubelite,
    failed_part,
)
from microkube.services.registry import daemon_running


@pytest.fixture
def paths(node_env_paths: Paths) -> Paths:
    return node_env_paths


def test_spec_holds_each_parts_arguments_and_an_edit_applies_at_the_next_start(
        paths: Paths) -> None:
    ctx = setup.prepare(paths)
    kubelite = Kubelite()
    kubelite.prepare(ctx)
    spec = json.loads(kubelite.spec_file(paths).read_text())
    assert set(spec["parts"]) == set(CONTROL_PLANE_PARTS + NETWORK_PARTS)
    # flannel's and netpol's own argument files and credentials.
    assert f"--kubeconfig-file={paths.data}/credentials/flannel.config" in spec["parts"]["flanneld"]
    assert f"--kubeconfig={paths.data}/credentials/netpol.config" in spec["parts"]["netpol"]
    # How flannel's subnet manager finds its Node outside a pod.
    assert kubelite.environment(ctx)["NODE_NAME"] == "unit"
    assert f"--cert-dir={paths.data}/certs/kubelet" in spec["parts"]["kubelet"]
    assert spec["failed_file"] == str(paths.run_dir / "kubelite.failed")
    assert kubelite.command(ctx)[1:] == ["kubelite", str(kubelite.spec_file(paths))]

    sched = paths.args_dir / "kube-scheduler"
    sched.write_text(sched.read_text() + "--v=3\n")
    kubelite.prepare(ctx)
    spec = json.loads(kubelite.spec_file(paths).read_text())
    assert spec["parts"]["kube-scheduler"][-1] == "--v=3"


def test_a_broken_part_file_is_named_and_no_spec_is_written(paths: Paths) -> None:
    ctx = setup.prepare(paths)
    (paths.args_dir / "kube-proxy").write_text("--ok=1\nnot a flag\n")
    with pytest.raises(UsageError, match="kube-proxy:2:"):
        Kubelite().prepare(ctx)
    assert not Kubelite().spec_file(paths).exists()


def test_a_worker_runs_the_network_parts_too() -> None:
    assert set(WorkerKubelite.parts) == {"kubelet", "kube-proxy", *NETWORK_PARTS}


def test_parts_are_restarted_through_kubelite() -> None:
    assert daemon_running("kubelet") == "kubelite"
    assert daemon_running("flanneld") == "kubelite"
    assert daemon_running("kube-apiserver") == "kubelite"
    assert daemon_running("etcd") == "etcd"
    with pytest.raises(KeyError):
        daemon_running("kube-nothing")


def test_failed_part_reads_what_kubelite_wrote(paths: Paths) -> None:
    assert failed_part(paths) is None
    paths.run_dir.mkdir(parents=True)
    (paths.run_dir / "kubelite.failed").write_text("kubelet\nfailed to run Kubelet: boom\n")
    assert failed_part(paths) == ("kubelet", "failed to run Kubelet: boom")
