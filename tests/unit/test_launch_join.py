"""A launch file's ``join`` and ``joinAsWorker``: checked whole before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.cluster.launchjoin import join_from_launch, pending_join
from microkube.config import launch
from microkube.errors import MicrokubeError, UsageError
from microkube.node.launch import first_start
from microkube.paths import Paths
from tests.launchfile import write_launch

TOKEN = "t" * 32
FINGERPRINT = "ab" * 32
JOIN = f"10.9.8.1:25000/{TOKEN}/{FINGERPRINT}"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")


def test_a_join_string_and_its_role_are_read(tmp_path: Path, paths: Paths) -> None:
    f = write_launch(tmp_path, f"version: 0.1.0\nnodeName: edge-8\njoin: {JOIN}\njoinAsWorker: true\n")
    found = pending_join(paths, f)
    assert found is not None
    cfg, join = found
    assert (cfg.join, cfg.join_as_worker) == (JOIN, True)
    assert (str(join.ip), join.port, join.token, join.fingerprint) == (
        "10.9.8.1", 25000, TOKEN, FINGERPRINT)
    assert not paths.data.exists() and not paths.common.exists()  # checking writes nothing


def test_a_control_plane_is_the_default_and_may_take_addons(tmp_path: Path, paths: Paths) -> None:
    f = write_launch(tmp_path, f"version: 0.1.0\njoin: {JOIN}\naddons:\n  - name: rbac\n")
    found = pending_join(paths, f)
    assert found is not None and found[0].join_as_worker is False
    assert found[0].addons == [("enable", ["rbac"])]


def test_a_file_without_join_or_a_set_up_node_has_nothing_to_join(
        tmp_path: Path, paths: Paths) -> None:
    assert pending_join(paths, write_launch(tmp_path, "version: 0.1.0\n")) is None
    assert pending_join(paths, None) is None  # no well-known file either
    first_start(paths, write_launch(tmp_path, "version: 0.1.0\nnodeName: alone\n"))
    assert pending_join(paths, write_launch(tmp_path, f"version: 0.1.0\njoin: {JOIN}\n")) is None


def test_the_well_known_file_joins_and_first_start_leaves_it_to_start(paths: Paths) -> None:
    launch.well_known(paths).parent.mkdir(parents=True)
    launch.well_known(paths).write_text(f"version: 0.1.0\njoin: {JOIN}\n")
    assert pending_join(paths, None) is not None
    # The snap's daemon started without `microkube start` must not form a cluster of its own.
    with pytest.raises(UsageError, match="join: this node joins its cluster at its first"):
        first_start(paths, None)
    assert not paths.state_file.exists()


@pytest.mark.parametrize("text, words", [
    (f"join: {JOIN}\njoinAsWorker: yes please\n", "joinAsWorker: expected boolean, got str"),
    ("join: ''\n", "join: '' should be non-empty"),
    ("join: 5\n", "join: expected string, got int"),
    ("joinAsWorker: true\n", "joinAsWorker: applies only with 'join'"),
    (f"join: {JOIN}\npodCIDR: 10.50.0.0/16\n", "podCIDR: a node that joins takes the cluster's"),
    (f"join: {JOIN}\ndatastore: sqlite\n", "datastore: a node that joins takes the cluster's"),
    (f"join: 10.9.8.1/{TOKEN}/{FINGERPRINT}\n", "join: the address has no port"),
    (f"join: 10.9.8.1:25000/{TOKEN}\n", "join: has 2 parts separated by '/', not 3"),
    (f"join: 10.9.8.1:25000/{TOKEN}/abc\n", "join: the fingerprint must be"),
    (f"join: 10.9.8.1:25000/short/{FINGERPRINT}\n", "join: "),
    (f"join: {JOIN}\nnodeName: Bad_Name\n", "nodeName: node name 'Bad_Name'"),
    (f"join: {JOIN}\njoinAsWorker: true\naddons:\n  - name: rbac\n",
     "addons: a worker cannot apply addons"),
    (f"join: {JOIN}\naddons:\n  - name: nosuch\n", "addons[0] (nosuch)"),
])
def test_bad_join_files_are_refused_with_one_line_and_nothing_written(
        tmp_path: Path, paths: Paths, text: str, words: str) -> None:
    f = write_launch(tmp_path, "version: 0.1.0\n" + text)
    with pytest.raises(UsageError) as e:
        join_from_launch(paths, f, lambda line: None)
    message = str(e.value)
    assert message.startswith(f"{f}: ") and words in message and "\n" not in message, message
    assert TOKEN not in message  # the token is a secret: a refusal names the key, not it
    assert not paths.data.exists() and not paths.common.exists()


def test_a_join_that_fails_leaves_the_node_not_set_up(tmp_path: Path, paths: Paths) -> None:
    # Nothing listens on port 1 of loopback: the CA cannot be fetched, no token is sent.
    f = write_launch(tmp_path, f"version: 0.1.0\nnodeAddress: 127.0.0.1\n"
                         f"join: 127.0.0.1:1/{TOKEN}/{FINGERPRINT}\njoinAsWorker: true\n")
    lines: list[str] = []
    with pytest.raises(MicrokubeError):
        join_from_launch(paths, f, lines.append, timeout=5)
    assert any("joining the cluster at 127.0.0.1:1 as a worker" in ln for ln in lines), lines
    assert not paths.state_file.exists() and not paths.join_marker.exists()
    assert pending_join(paths, f) is not None  # a corrected (or the same) file is tried again


def test_the_snap_install_hook_leaves_a_joining_node_to_start(
        paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    from microkube.snap import hooks

    monkeypatch.setattr(hooks, "_node_options", lambda: {})
    monkeypatch.setattr(hooks, "_launch_option", lambda: None)
    launch.well_known(paths).parent.mkdir(parents=True)
    launch.well_known(paths).write_text(f"version: 0.1.0\njoin: {JOIN}\njoinAsWorker: true\n")
    hooks.install(paths)
    assert not paths.state_file.exists()  # no cluster of its own: `start` joins
    assert pending_join(paths, None) is not None
