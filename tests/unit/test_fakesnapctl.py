"""The fake snapd's snapctl answers as snapd's ctlcmd does (cases from snapd's own tests)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from microkube.errors import MicrokubeError
from microkube.services import snapctl as client
from tests.snap.fakesnapctl import ServiceStatus, run

APPS = ["daemon-etcd", "daemon-kube-apiserver", "daemon-kubelet"]


@dataclass
class Recorder:
    """Services that only records what the commands asked for."""

    name: str = "microkube"
    options: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, list[str], bool]] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)

    def service_apps(self) -> list[str]:
        return list(APPS)

    def start(self, apps: list[str], enable: bool) -> None:
        self.calls.append(("start", apps, enable))

    def stop(self, apps: list[str], disable: bool) -> None:
        self.calls.append(("stop", apps, disable))

    def restart(self, apps: list[str]) -> None:
        self.calls.append(("restart", apps, False))

    def status(self, app: str) -> ServiceStatus:
        return ServiceStatus(app, app not in self.disabled, app in self.active)


def test_get_prints_values_and_leaves_unset_keys_out_without_failing() -> None:
    s = Recorder(options={"test-key1": "test-value1", "test-key2": 2, "node": {"name": "a"}})
    assert run(s, ["get", "test-key1"]) == ("test-value1\n", "", 0)
    assert run(s, ["get", "test-key2"]) == ("2\n", "", 0)
    assert run(s, ["get", "missing-key"]) == ("\n", "", 0)
    assert run(s, ["get", "-t", "test-key1"]) == ('"test-value1"\n', "", 0)
    assert run(s, ["get", "-t", "missing-key"]) == ("null\n", "", 0)
    assert run(s, ["get", "-d", "test-key1"]) == ('{\n\t"test-key1": "test-value1"\n}\n', "", 0)
    assert run(s, ["get", "test-key1", "test-key2"]) == (
        '{\n\t"test-key1": "test-value1",\n\t"test-key2": 2\n}\n', "", 0)
    assert run(s, ["get", "-d", "node.ip"]) == ("{}\n", "", 0)
    assert run(s, ["get", "node.name"]) == ("a\n", "", 0)
    assert run(s, ["get", "-t", "test-key2.sub"]) == (
        "", 'error: snap "microkube" option "test-key2" is not a map\n', 1)
    assert run(s, ["get"])[1] == "error: get which option?\n"
    assert run(s, ["get", "-d", "-t", "x"])[1] == "error: cannot use -d and -t together\n"


def test_services_prints_snapds_table_sorted_by_app() -> None:
    s = Recorder(active={"daemon-etcd", "daemon-kubelet"}, disabled={"daemon-kubelet"})
    out, err, code = run(s, ["services"])
    assert (err, code) == ("", 0)
    assert out == (
        "Service                          Startup   Current   Notes\n"
        "microkube.daemon-etcd            enabled   active    -\n"
        "microkube.daemon-kube-apiserver  enabled   inactive  -\n"
        "microkube.daemon-kubelet         disabled  active    -\n")
    one = run(s, ["services", "microkube.daemon-etcd"])[0]
    assert one == ("Service                Startup  Current  Notes\n"
                   "microkube.daemon-etcd  enabled  active   -\n")
    assert run(s, ["services", "microkube"])[0] == out


def test_service_commands_take_the_snaps_own_services_only() -> None:
    s = Recorder()
    assert run(s, ["start", "--enable", "microkube.daemon-kubelet", "microkube.daemon-etcd"]) == (
        "", "", 0)
    assert run(s, ["stop", "microkube", "--disable"]) == ("", "", 0)
    assert run(s, ["restart", "microkube.daemon-kubelet"]) == ("", "", 0)
    assert s.calls == [("start", ["daemon-etcd", "daemon-kubelet"], True),
                       ("stop", APPS, True),
                       ("restart", ["daemon-kubelet"], False)]
    for args, error in (
            (["start"], "the required argument `<service> (at least 1 argument)` was not provided"),
            (["stop", "microkube.kubectl"], 'unknown service: "microkube.kubectl"'),
            (["restart", "other.daemon-etcd"], 'unknown service: "other.daemon-etcd"'),
            (["start", "--now", "microkube"], "unknown flag `now'"),
            (["services", "--global", "--user"], "cannot combine --global and --user switches.")):
        assert run(s, args) == ("", f"error: {error}\n", 1), args
    assert len(s.calls) == 3


@pytest.mark.parametrize("args", [["get", "-d", "node"], ["get", "-d", "node.name"]])
def test_microkubes_client_reads_an_unset_option_as_empty(
        args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    s = Recorder()
    monkeypatch.setattr(client, "_snapctl", lambda *a: run(s, list(a))[0])
    assert client.get_document(args[-1]) == {}


def test_microkubes_client_reads_snapds_table(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Recorder(active={"daemon-etcd"})
    monkeypatch.setattr(client, "_snapctl", lambda *a: run(s, list(a))[0])
    monkeypatch.setenv("SNAP_INSTANCE_NAME", "microkube")
    assert client.active(["etcd", "kubelet"]) == {"etcd": True, "kubelet": False}


def test_microkubes_client_says_in_one_line_when_snapd_does_not_answer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(argv: list[str], **kw: Any) -> None:
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(MicrokubeError, match=r"^snapctl stop: no answer from snapd within 180 s$"):
        client.stop(["etcd"])
