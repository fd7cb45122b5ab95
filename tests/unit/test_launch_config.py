"""The launch configuration: checked whole before anything is written, then applied once."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config import args, launch, node
from microkube.errors import UsageError
from microkube.node.launch import first_start
from microkube.paths import Paths
from tests.launchfile import write_launch

GOOD = """\
version: 0.1.0
nodeName: edge-7
nodeAddress: 10.9.8.7
podCIDR: 10.50.0.0/16
extraKubeletArgs:
  --max-pods: 42
  --read-only-port: null
extraKubeAPIServerArgs:
  --event-ttl: 30m
addons:
  - name: dns
    args: [--upstream, 10.9.8.1]
  - name: rbac
    disabled: true
"""


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


def test_a_launch_file_sets_up_the_node(tmp_path: Path, paths: Paths) -> None:
    applied = first_start(paths, write_launch(tmp_path, GOOD))
    assert applied is not None
    cfg = node.load(paths.state_file)
    assert (cfg.node_name, cfg.node_ip, cfg.pod_cidr) == ("edge-7", "10.9.8.7", "10.50.0.0/16")
    kubelet = paths.args_file("kubelet").read_text()
    assert "--max-pods=42" in kubelet and "--read-only-port" not in kubelet
    assert "--event-ttl=30m" in paths.args_file("kube-apiserver").read_text()
    assert launch.pending_addons(paths) == [("enable", ["dns", "--upstream", "10.9.8.1"]),
                                            ("disable", ["rbac"])]
    # Only the first start: later, --config is refused and the well-known file ignored.
    with pytest.raises(UsageError, match="set up already"):
        first_start(paths, write_launch(tmp_path, GOOD))
    launch.well_known(paths).write_text(GOOD.replace("edge-7", "other"))
    assert first_start(paths, None) is None


def test_the_well_known_file_is_picked_up(paths: Paths) -> None:
    launch.well_known(paths).parent.mkdir(parents=True)
    launch.well_known(paths).write_text("version: 0.1.0\nnodeName: from-common\n")
    assert first_start(paths, None) is not None
    assert node.load(paths.state_file).node_name == "from-common"


@pytest.mark.parametrize("text, words", [
    ("version: 0.1.0\nnodeNmae: x\n", "(top level): unknown key 'nodeNmae'"),
    ("nodeName: x\n", "'version' is missing"),
    ("version: 9\n", "version: 9 is not one of 0.1.0"),
    ("version: 0.1.0\nextraKubeletArgs:\n  max-pods: 3\n",
     "extraKubeletArgs: unknown key 'max-pods'"),
    ("version: 0.1.0\nextraKubeletArgs:\n  --max-pods: [1]\n", "extraKubeletArgs.--max-pods"),
    ("version: 0.1.0\nnodeAddress: 10.0.0.300\n", "nodeAddress: '10.0.0.300' is not an IP"),
    ("version: 0.1.0\nnodeName: Bad_Name\n", "nodeName: node name 'Bad_Name'"),
    ("version: 0.1.0\npodCIDR: 10.0.0.0/33\n", "podCIDR:"),
    ("version: 0.1.0\naddons:\n  - name: nosuch\n", "addons[0] (nosuch)"),
    ("version: 0.1.0\naddons:\n  - name: dns\n    args: [--bogus]\n", "addons[0] (dns)"),
    ("version: 0.1.0\naddons:\n  - name: dns\n    enabled: true\n",
     "addons[0] (dns): unknown key 'enabled'"),
    ("version: [0.1.0\n", "not valid YAML"),
    # Checked by the node's settings, after the schema: still before a byte is written.
    ("version: 0.1.0\nclusterDomain: bad domain\n", "clusterDomain: 'bad domain' is not a valid"),
    ("version: 0.1.0\nserviceCIDR: 10.152.183.0/30\n", "serviceCIDR: 10.152.183.0/30 is too small"),
])
def test_bad_files_are_refused_with_one_line_and_nothing_written(
        tmp_path: Path, paths: Paths, text: str, words: str) -> None:
    with pytest.raises(UsageError) as e:
        first_start(paths, write_launch(tmp_path, text))
    assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not paths.data.exists() and not paths.common.exists()


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe\x00bad", "not UTF-8 text"),
    (b"version: 0.1.0\n" + b"#" * (launch.MAX_SIZE + 1), "larger than 1024 KiB"),
])
def test_binary_or_huge_files_are_refused_with_one_line(
        tmp_path: Path, paths: Paths, content: bytes, words: str) -> None:
    source = tmp_path / "launch.yaml"
    source.write_bytes(content)
    with pytest.raises(UsageError, match=words):
        first_start(paths, source)
    assert not paths.data.exists() and not paths.common.exists()


def test_an_endless_device_is_refused_not_read_forever(paths: Paths) -> None:
    with pytest.raises(UsageError, match="larger than"):
        launch.load(Path("/dev/zero"))


def test_a_missing_file_is_refused(tmp_path: Path, paths: Paths) -> None:
    with pytest.raises(UsageError, match="no such launch configuration"):
        first_start(paths, tmp_path / "nope.yaml")


def test_flags_keep_the_users_defaults_around_them(tmp_path: Path, paths: Paths) -> None:
    first_start(paths, write_launch(tmp_path, "version: 0.1.0\nextraEtcdArgs:\n  --log-level: info\n"))
    text = paths.args_file("etcd").read_text()
    assert args.flag_value(args.parse(text, "etcd", {"SNAP": "", "SNAP_DATA": "", **{
        k: "x" for k in ("NODE_NAME", "NODE_IP", "DATASTORE_CLIENT_PORT", "DATASTORE_PEER_PORT",
                         "DATASTORE_METRICS_PORT")}}), "log-level") == "info"
    assert text.count("--log-level") == 1


def test_restoring_one_member_of_an_etcd_cluster_is_refused(tmp_path: Path, paths: Paths) -> None:
    from microkube.datastore.backup import member

    first_start(paths, write_launch(tmp_path, "version: 0.1.0\nnodeName: n1\nnodeAddress: 10.0.0.1\n"))
    assert member(paths).initial_cluster == "n1=https://10.0.0.1:12380"
    args.set_flag(paths, "etcd", "initial-cluster",
                  "n1=https://10.0.0.1:12380,n2=https://10.0.0.2:12380")
    with pytest.raises(UsageError, match="one member of a cluster"):
        member(paths)


@pytest.mark.parametrize("content", [b'{"x": ', b"\xff[", b'{"ab": 1}', b'[["enable", "dns"]]', b"5"])
def test_a_damaged_record_of_addon_steps_is_one_line(paths: Paths, content: bytes) -> None:
    launch.pending_addons_file(paths).parent.mkdir(parents=True)
    launch.pending_addons_file(paths).write_bytes(content)
    with pytest.raises(UsageError, match=r"launch-addons\.json: cannot read the launch file's "
                                         r"addon steps \(damaged\); remove it"):
        launch.pending_addons(paths)
