from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config import args
from microkube.config.node import NodeConfig
from microkube.errors import UsageError
from microkube.paths import Paths

VALUES = {"SNAP_DATA": "/data", "NODE_IP": "10.0.0.5"}


def test_parse_expands_variables_and_skips_comments() -> None:
    text = "# comment\n\n--data-dir=${SNAP_DATA}/etcd\n--advertise ${NODE_IP}\n--flag\n"
    assert args.parse(text, "etcd", VALUES) == ["--data-dir=/data/etcd", "--advertise=10.0.0.5", "--flag"]


@pytest.mark.parametrize("line", ["garbage", "-x=1", "--a=1 2", "--=3"])
def test_parse_rejects_a_line_that_is_no_flag(line: str) -> None:
    with pytest.raises(UsageError, match=r"kubelet:2: .* is not a flag"):
        args.parse(f"--ok=1\n{line}\n", "kubelet", VALUES)


def test_parse_rejects_unknown_variables() -> None:
    with pytest.raises(UsageError, match=r"kubelet:1: unknown variable \$\{NOPE\}"):
        args.parse("--x=${NOPE}", "kubelet", VALUES)


def test_install_defaults_keeps_user_edits_and_set_flag(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    assert set(args.install_defaults(paths)) == set(args.DAEMONS)
    kubelet = paths.args_file("kubelet")
    kubelet.write_text("--v=4\n")
    assert args.install_defaults(paths) == []
    assert kubelet.read_text() == "--v=4\n"
    args.set_flag(paths, "kubelet", "v", "2")
    args.set_flag(paths, "kubelet", "max-pods", "50")
    assert kubelet.read_text() == "--v=2\n--max-pods=50\n"
    args.set_flag(paths, "kubelet", "max-pods", None)
    assert args.flag_value(args.parse(kubelet.read_text(), "k", {}), "v") == "2"


def test_every_default_args_file_parses(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    node = NodeConfig(node_name="x", node_ip="10.0.0.5").substitutions()
    values = {**args.path_substitutions(paths), **node}
    for daemon in args.DAEMONS:
        assert args.parse(args.default_text(daemon), daemon, values)


def test_default_args_take_ports_from_paths(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    node = {"NODE_NAME": "n1", "NODE_IP": "10.0.0.5"}
    etcd = args.parse(args.default_text("etcd"), "etcd", {**args.path_substitutions(paths), **node})
    assert args.flag_value(etcd, "listen-client-urls") == "https://127.0.0.1:12379,https://10.0.0.5:12379"
    assert args.flag_value(etcd, "initial-cluster") == "n1=https://10.0.0.5:12380"
    proxy = args.parse(args.default_text("kube-proxy"), "kube-proxy",
                       {**args.path_substitutions(paths), "NODE_NAME": "n1", "POD_CIDR": "10.1.0.0/16"})
    assert args.flag_value(proxy, "healthz-bind-address") == f"127.0.0.1:{paths.ports.kube_proxy_healthz}"


def test_the_api_server_watch_cache_is_off_on_etcd_and_on_under_kine(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    text = args.default_text("kube-apiserver")
    for datastore, expected in (("etcd", "false"), ("external-etcd", "false"),
                                ("sqlite", "true"), ("postgres", "true"), ("mysql", "true")):
        node = NodeConfig(node_name="x", node_ip="10.0.0.5", datastore=datastore)
        argv = args.parse(text, "kube-apiserver",
                          {**args.path_substitutions(paths), **node.substitutions()})
        assert args.flag_value(argv, "watch-cache") == expected, datastore


def test_an_argument_file_of_binary_bytes_is_one_clear_line(tmp_path: Path) -> None:
    paths = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    paths.args_dir.mkdir(parents=True)
    paths.args_file("kubelet").write_bytes(b"--v=2\n\xff\xfe\n")
    with pytest.raises(UsageError, match=r"args/kubelet: not UTF-8 text \(byte 6\)"):
        args.read(paths, "kubelet", {})
