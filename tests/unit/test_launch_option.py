"""``snap set microkube config=...``: a launch configuration given as a snap option."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.config import args, launch, node
from microkube.errors import UsageError
from microkube.node.launch import first_start
from microkube.paths import Paths
from microkube.snap import launchoption

FIRST = """\
version: 0.1.0
nodeName: edge-7
nodeAddress: 10.9.8.7
extraKubeletArgs:
  --max-pods: 42
"""


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


@pytest.fixture
def set_up(paths: Paths) -> Paths:
    """A node set up from the option at install (what the install hook does)."""
    launchoption.before_setup(paths, FIRST)
    assert first_start(paths, None) is not None
    return paths


def _state(paths: Paths) -> dict[str, str]:
    """Every file under the node's data and common folders, with its text (but the JSON
    copies of YAML files that reading them leaves: yamlerrors.read)."""
    return {str(p): p.read_text() for root in (paths.data, paths.common)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_relative_to(paths.yaml_cache_dir)}


def test_set_before_install_it_shapes_the_first_setup(set_up: Paths) -> None:
    cfg = node.load(set_up.state_file)
    assert (cfg.node_name, cfg.node_ip) == ("edge-7", "10.9.8.7")
    assert "--max-pods=42" in set_up.args_file("kubelet").read_text()
    # It may hold a join token or a database password.
    assert launch.well_known(set_up).stat().st_mode & 0o777 == 0o600


def test_only_text_is_taken() -> None:
    assert launchoption.option_text(None) is None
    assert launchoption.option_text("") is None
    assert launchoption.option_text("version: 0.1.0\n") == "version: 0.1.0\n"
    with pytest.raises(UsageError, match=r"^config: expected the launch configuration's YAML"):
        launchoption.option_text({"version": "0.1.0"})


def test_a_bad_option_names_the_option_and_key_and_writes_nothing(paths: Paths) -> None:
    with pytest.raises(UsageError, match=r"^config: \(top level\): unknown key .nodeNmae.") as e:
        launchoption.before_setup(paths, "version: 0.1.0\nnodeNmae: x\n")
    assert "\n" not in str(e.value)
    assert not launch.well_known(paths).exists()
    with pytest.raises(UsageError, match=r"^config: not valid YAML"):
        launchoption.before_setup(paths, "version: [0.1.0\n")


def test_on_an_existing_node_flags_apply_and_name_the_daemon_to_restart(set_up: Paths) -> None:
    text = FIRST.replace("42", "90") + "extraContainerdArgs:\n  --log-level: debug\n"
    applied = launchoption.apply_to_existing(set_up, text)
    # The kubelet is a part of kubelite: kubelite is what restarts.
    assert applied.restart == {"kubelite", "containerd"}
    assert "--max-pods=90" in set_up.args_file("kubelet").read_text()
    assert "--max-pods=42" not in set_up.args_file("kubelet").read_text()
    assert launch.well_known(set_up).read_text() == text
    assert launchoption.unchanged(set_up, text)
    assert "restarted containerd, kubelite" in applied.summary()
    # The same flags again change no file: nothing restarts.
    again = launchoption.apply_to_existing(set_up, text)
    assert again.restart == set()
    assert again.summary() == "launch configuration: nothing to change"


def test_on_an_existing_node_addons_are_queued_after_those_left(set_up: Paths) -> None:
    launch.save_pending_addons(set_up, [("enable", ["rbac"])])
    applied = launchoption.apply_to_existing(
        set_up, FIRST + "addons:\n  - name: dns\n  - name: hostpath-storage\n    disabled: true\n")
    assert applied.restart == set()
    assert launch.pending_addons(set_up) == [("enable", ["rbac"]), ("enable", ["dns"]),
                                             ("disable", ["hostpath-storage"])]
    assert "queued enable dns, disable hostpath-storage" in applied.summary()


@pytest.mark.parametrize("change, message", [
    ("nodeName: other", "config: nodeName: cannot change once the node is set up (it is edge-7)"),
    ("nodeAddress: 10.9.8.9", "config: nodeAddress: cannot change once the node is set up"),
    ("podCIDR: 10.77.0.0/16", "config: podCIDR: cannot change once the node is set up"),
    ("networkPolicy: false", "config: networkPolicy: cannot change once the node is set up"),
    ("datastore: sqlite", "config: datastore: this node's datastore is etcd already"),
    ("addons: [{name: no-such-addon}]", "config: addons[0] (no-such-addon): "),
])
def test_a_change_that_would_reshape_the_node_is_refused_whole(
        set_up: Paths, change: str, message: str) -> None:
    before = _state(set_up)
    text = FIRST.replace("42", "90") + change + "\n"
    with pytest.raises(UsageError) as e:
        launchoption.apply_to_existing(set_up, text)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)
    assert _state(set_up) == before  # not even the flag beside it was written


def test_a_join_is_refused_on_an_existing_node(set_up: Paths) -> None:
    text = "version: 0.1.0\njoin: 10.0.0.1:25000/" + "a" * 32 + "\n"
    with pytest.raises(UsageError, match=r"^config: join: this node is set up already; run "):
        launchoption.apply_to_existing(set_up, text)


def test_settings_equal_to_the_nodes_are_accepted(set_up: Paths) -> None:
    cfg = node.load(set_up.state_file)
    text = FIRST + f"podCIDR: {cfg.pod_cidr}\nnetworkPolicy: true\n"
    assert launchoption.apply_to_existing(set_up, text).restart == set()
    assert args.flag_value(set_up.args_file("kubelet").read_text().split(), "max-pods") == "42"
