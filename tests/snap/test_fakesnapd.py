"""The fake snapd itself, on a tiny snap of shell daemons: snapctl reaches it from the snap's
apps and hooks, service control does what snapd and systemd do, and a daemon app that exits
is restarted as its restart-condition says. Needs root (cgroups, a network namespace) but no
built node, so it takes seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import network_namespace
from tests.snap.fakesnapd import FakeSnapd, restarts
from tests.testnode import wait_for

pytestmark = pytest.mark.e2e

SNAP_YAML = """
name: microkube
version: '0.1'
confinement: classic
apps:
  cli: {command: bin/cli}
  daemon-a:
    command: bin/daemon a
    post-stop-command: bin/post-stop a
    daemon: simple
    restart-condition: always
    restart-delay: 200ms
    stop-timeout: 5s
  daemon-b:
    command: bin/daemon b
    post-stop-command: bin/post-stop b
    daemon: simple
    after: [daemon-a]
  daemon-c:
    command: bin/daemon c
    daemon: simple
    install-mode: disable
"""

# Each daemon leaves a child in its cgroup (as containerd leaves its shims) and exits 0 on USR1.
DAEMON = """#!/bin/sh
sleep 100000 &
echo $! > "$SNAP_COMMON/$1.child.new" && mv "$SNAP_COMMON/$1.child.new" "$SNAP_COMMON/$1.child"
echo $$ > "$SNAP_COMMON/$1.pid.new" && mv "$SNAP_COMMON/$1.pid.new" "$SNAP_COMMON/$1.pid"
trap 'exit 0' USR1
wait
"""
POST_STOP = '#!/bin/sh\necho stopped >> "$SNAP_COMMON/$1.post-stop"\n'
INSTALL_HOOK = """#!/bin/sh
snapctl get -d node > "$SNAP_COMMON/install-saw-node"
snapctl get node.name > "$SNAP_COMMON/install-saw-name"
"""


def _build(tree: Path, out: Path) -> Path:
    files = {"meta/snap.yaml": SNAP_YAML, "bin/daemon": DAEMON, "bin/post-stop": POST_STOP,
             "bin/cli": "#!/bin/sh\nexec snapctl \"$@\"\n", "meta/hooks/install": INSTALL_HOOK,
             "meta/hooks/configure": "#!/bin/sh\nexit 0\n"}
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(textwrap.dedent(text))
        (tree / rel).chmod(0o755)
    subprocess.run(["mksquashfs", str(tree), str(out), "-noappend", "-quiet", "-all-root"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def snapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSnapd]:
    if os.geteuid() != 0:
        pytest.skip("the fake snapd's cgroups and network namespace need root")
    for tool in ("nsenter", "ip", "mksquashfs", "unsquashfs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    snap = _build(tmp_path_factory.mktemp("tree"), tmp_path_factory.mktemp("out") / "t.snap")
    with network_namespace(f"mk-fake-{os.getpid()}", "10.216.0.2") as netns:
        fake = FakeSnapd(root=tmp_path_factory.mktemp("snapd"), netns=netns)
        try:
            fake.snap_install(snap)
            yield fake
        finally:
            fake.kill_everything()


def _pid(snapd: FakeSnapd, name: str, what: str = "pid") -> int:
    return int((snapd.common_dir / f"{name}.{what}").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text(
    ).split(")")[-1].split()[0]


def _post_stops(snapd: FakeSnapd, name: str) -> int:
    path = snapd.common_dir / f"{name}.post-stop"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _services(snapd: FakeSnapd) -> str:
    proc = snapd.snapctl("services")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_install_starts_the_enabled_daemon_apps_and_hooks_read_unset_options(
        snapd: FakeSnapd) -> None:
    assert (snapd.common_dir / "install-saw-node").read_text() == "{}\n"
    assert (snapd.common_dir / "install-saw-name").read_text() == "\n"
    assert _services(snapd) == (
        "Service             Startup   Current   Notes\n"
        "microkube.daemon-a  enabled   active    -\n"
        "microkube.daemon-b  enabled   active    -\n"
        "microkube.daemon-c  disabled  inactive  -\n")
    # An app of the snap finds the same snapctl.
    proc = subprocess.run([str(snapd.snap_dir() / "bin" / "cli"), "services", "microkube.daemon-a"],
                          env=snapd.environment(), capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[1].split() == ["microkube.daemon-a", "enabled", "active", "-"]


def test_stop_disable_ends_the_whole_cgroup_then_runs_post_stop(snapd: FakeSnapd) -> None:
    main, child = _pid(snapd, "b"), _pid(snapd, "b", "child")
    assert snapd.snapctl("stop", "--disable", "microkube.daemon-b").returncode == 0
    assert not _alive(main) and not _alive(child)
    assert _post_stops(snapd, "b") == 1
    assert "microkube.daemon-b  disabled  inactive" in _services(snapd)
    assert snapd.snapctl("stop", "microkube.daemon-b").returncode == 0  # stopped already
    assert _post_stops(snapd, "b") == 1
    assert snapd.snapctl("start", "--enable", "microkube.daemon-b").returncode == 0
    assert "microkube.daemon-b  enabled   active" in _services(snapd)
    wait_for("daemon-b's new process", lambda: _pid(snapd, "b") != main, timeout=20, every=0.1)
    assert snapd.exited() == {}


def test_restart_gives_a_new_process(snapd: FakeSnapd) -> None:
    main = _pid(snapd, "a")
    assert snapd.snapctl("restart", "microkube.daemon-a").returncode == 0
    assert not _alive(main)
    wait_for("daemon-a's new process", lambda: _pid(snapd, "a") != main, timeout=20, every=0.1)
    assert snapd.exited() == {}


def test_a_daemon_that_exits_is_restarted_as_its_restart_condition_says(
        snapd: FakeSnapd) -> None:
    # daemon-b: no restart-condition, so snapd's on-failure. Killed: restarted.
    main, child = _pid(snapd, "b"), _pid(snapd, "b", "child")
    before = _post_stops(snapd, "b")
    os.kill(main, signal.SIGKILL)
    wait_for("daemon-b to come back", lambda: _pid(snapd, "b") != main, timeout=20, every=0.1)
    assert not _alive(child)  # the rest of its cgroup went with it
    assert _post_stops(snapd, "b") == before + 1
    assert snapd.exited() == {"daemon-b": -signal.SIGKILL}
    # A clean exit is no failure: it stays down.
    os.kill(_pid(snapd, "b"), signal.SIGUSR1)
    wait_for("daemon-b to stop", lambda: "daemon-b  enabled   inactive" in _services(snapd),
             timeout=20, every=0.1)
    # daemon-a: restart-condition always. A clean exit is restarted too.
    main = _pid(snapd, "a")
    os.kill(main, signal.SIGUSR1)
    wait_for("daemon-a to come back", lambda: _pid(snapd, "a") != main, timeout=20, every=0.1)
    assert "daemon-a  enabled   active" in _services(snapd)


def test_restart_conditions_are_systemds() -> None:
    assert restarts(None, 1) and restarts(None, -signal.SIGKILL)
    assert not restarts(None, 0) and not restarts("on-failure", -signal.SIGTERM)
    assert restarts("always", 0) and restarts("on-success", 0)
    assert restarts("on-abnormal", -signal.SIGSEGV) and not restarts("on-abnormal", 1)
    assert not restarts("never", -signal.SIGKILL) and not restarts("no", 1)


def test_errors_are_snapds(snapd: FakeSnapd) -> None:
    proc = snapd.snapctl("start", "microkube.cli")
    assert (proc.returncode, proc.stderr) == (1, 'error: unknown service: "microkube.cli"\n')
