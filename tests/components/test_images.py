"""Our image archives in a real containerd: import, run, stop, export.

containerd runs on a private root, state and socket under a temporary
directory, with the CRI and NRI plugins off; nothing is ever pulled, and
its proxy points at a closed loopback port so a stray pull fails locally.
Everything started here is stopped by pid, and mounts under the temporary
directory are undone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from microkube.errors import MicrokubeError
from microkube.images import importer, names, oci, recipes
from microkube.images.build import build_image
from microkube.paths import Paths
from tests.testnode import require_built, wait_for

pytestmark = pytest.mark.components

TREE = Paths.from_env().snap
BIN = Paths.from_env().bin_dir
NEEDED = ("containerd", "ctr", "containerd-shim-runc-v2", "runc")
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens, so a pull fails at once


def _require(needed: tuple[str, ...]) -> None:
    """Skip unless root with busybox installed; then require ``needed`` (see require_built)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not recipes.BUSYBOX_BINARY.is_file():
        pytest.skip(f"{recipes.BUSYBOX_BINARY} missing: {recipes.BUSYBOX_INSTALL_HINT}")
    if needed:
        require_built(*(BIN / name for name in needed), tree=TREE)


# containerd 2.x config version 4: the servers are plugins of their own.
CONFIG = """\
version = 4
root = "{root}"
state = "{state}"
imports = []
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
]

[plugins."io.containerd.server.v1.grpc"]
  address = "{socket}"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "{socket}.ttrpc"

[plugins."io.containerd.server.v1.debug"]
  address = ""
"""


@dataclass
class Containerd:
    base: Path
    socket: Path
    process: subprocess.Popen[bytes]
    log: Path

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "ctr"), "--address", str(self.socket), "-n", importer.NAMESPACE, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _mounts_under(base: Path) -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == str(base) or point.startswith(f"{base}/"):
                points.append(point)
    return points


def _pids_using(base: Path) -> list[int]:
    """Processes whose command line names our private directory: our shims."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if str(base).encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def _clean_up(ctrd: Containerd) -> None:
    # Tasks and containers first, so the shims exit and unmount their rootfs.
    listing = ctrd.ctr("containers", "list", "--quiet")
    for cid in listing.stdout.split():
        ctrd.ctr("task", "kill", "-s", "SIGKILL", cid)
        ctrd.ctr("task", "delete", "--force", cid)
        ctrd.ctr("containers", "delete", cid)
    ctrd.process.terminate()
    try:
        ctrd.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        ctrd.process.kill()
        ctrd.process.wait(timeout=10)
    for pid in _pids_using(ctrd.base):  # only ever processes started for this directory
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in sorted(_mounts_under(ctrd.base), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    _require(NEEDED)
    base = tmp_path_factory.mktemp("ctrd")
    socket = base / "containerd.sock"
    config = base / "config.toml"
    config.write_text(
        CONFIG.format(root=base / "root", state=base / "state", socket=socket, base=base)
    )
    env = {
        "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HTTP_PROXY": NOWHERE,
        "HTTPS_PROXY": NOWHERE,
        "NO_PROXY": "",
    }
    log = base / "containerd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "containerd"), "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    ctrd = Containerd(base, socket, process, log)
    try:
        deadline = time.monotonic() + 60
        while ctrd.ctr("version", timeout=10).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"containerd did not come up:\n{ctrd.log_tail()}")
            time.sleep(0.5)
        yield ctrd
    finally:
        _clean_up(ctrd)
    assert _mounts_under(base) == [], "mounts left under the test directory"


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _require(())
    # Only the node's own images: build_images also builds addon images (slow Go builds).
    out = tmp_path_factory.mktemp("images")
    paths = [build_image(r, out) for r in (recipes.PauseRecipe(), recipes.BusyboxRecipe())]
    return {p.stem: p for p in paths}


@pytest.fixture(scope="module")
def imported(containerd: Containerd, archives: dict[str, Path]) -> dict[str, Path]:
    importer.import_archives(BIN / "ctr", containerd.socket, list(archives.values()))
    return archives


def test_import_names_and_pins_the_images(
    containerd: Containerd, imported: dict[str, Path]
) -> None:
    present = importer.list_images(BIN / "ctr", containerd.socket)
    assert names.PAUSE_IMAGE in present
    assert names.BUSYBOX_IMAGE in present
    listing = containerd.ctr("images", "list")
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()[1:]
    assert {row.split()[0] for row in rows} == set(present), listing.stdout
    for row in rows:
        assert importer.PINNED_LABEL in row, row


def test_import_missing_skips_what_is_there(
    containerd: Containerd, imported: dict[str, Path]
) -> None:
    ctr, sock = BIN / "ctr", containerd.socket
    digests = importer.image_digests(ctr, sock)
    assert digests[names.PAUSE_IMAGE] == oci.read_archive(imported["pause"]).manifest_digest
    assert importer.import_missing(ctr, sock, list(imported.values())) == []


def test_busybox_runs_a_command(containerd: Containerd, imported: dict[str, Path]) -> None:
    result = containerd.ctr(
        "run", "--rm", "--runc-binary", str(BIN / "runc"),
        names.BUSYBOX_IMAGE, "mk-busybox-echo",
        "sh", "-c", "echo hello from $(hostname) && ls -ld /tmp && id -u",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + containerd.log_tail()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("hello from ")
    assert lines[1].startswith("drwxrwxrwt")
    assert lines[2] == "0"


def test_pause_reports_its_version(containerd: Containerd, imported: dict[str, Path]) -> None:
    result = containerd.ctr(
        "run", "--rm", "--runc-binary", str(BIN / "runc"),
        names.PAUSE_IMAGE, "mk-pause-version", "/pause", "-v",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + containerd.log_tail()
    assert recipes.PAUSE_VERSION in result.stdout


def _task(containerd: Containerd, cid: str) -> tuple[int, str] | None:
    """(host pid, status) of task ``cid`` as `ctr task list` shows it, or None if not listed."""
    for line in containerd.ctr("task", "list").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return int(fields[1]), fields[-1]
    return None


def _catches(pid: int, sig: signal.Signals) -> bool:
    """True once process ``pid`` has a handler for ``sig`` (the SigCgt mask in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def test_pause_exits_zero_on_sigterm(containerd: Containerd, imported: dict[str, Path]) -> None:
    cid = "mk-pause-term"
    argv = [
        str(BIN / "ctr"), "--address", str(containerd.socket), "-n", importer.NAMESPACE,
        "run", "--rm", "--runc-binary", str(BIN / "runc"), names.PAUSE_IMAGE, cid,
    ]  # fmt: skip
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def running() -> bool:
            assert run.poll() is None, run.communicate()[1]
            task = _task(containerd, cid)
            return task is not None and task[1] == "RUNNING"

        wait_for("pause reaching RUNNING", running, 60, 0.3)
        task = _task(containerd, cid)
        assert task is not None
        # As PID 1 of its namespace, pause gets SIGTERM only once it has a handler for it.
        wait_for("pause handling SIGTERM", lambda: _catches(task[0], signal.SIGTERM), 60, 0.1)
        assert _task(containerd, cid) == (task[0], "RUNNING")  # it pauses; it does not exit
        kill = containerd.ctr("task", "kill", "-s", "SIGTERM", cid)
        assert kill.returncode == 0, kill.stderr
        _, err = run.communicate(timeout=30)
        assert run.returncode == 0, f"pause exited {run.returncode}: {err}"
    finally:
        if run.poll() is None:
            containerd.ctr("task", "kill", "-s", "SIGKILL", cid)
            run.wait(timeout=30)


def test_export_gives_back_the_same_image(
    containerd: Containerd, imported: dict[str, Path], tmp_path: Path
) -> None:
    dest = tmp_path / "busybox-export.tar"
    importer.export_image(BIN / "ctr", containerd.socket, names.BUSYBOX_IMAGE, dest)
    exported = oci.read_archive(dest)
    ours = oci.read_archive(imported["busybox"])
    assert exported.name == names.BUSYBOX_IMAGE
    assert exported.manifest_digest == ours.manifest_digest


def test_ctr_errors_are_one_line(containerd: Containerd, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"not a tar")
    with pytest.raises(MicrokubeError) as err:
        importer.import_archives(BIN / "ctr", containerd.socket, [bogus])
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("importing bogus.tar:")


def _extract_pause(archive: Path, dest: Path) -> Path:
    """The /pause binary exactly as the archive ships it."""

    def member(tar: tarfile.TarFile, name: str) -> bytes:
        f = tar.extractfile(name)
        assert f is not None, name
        return f.read()

    with tarfile.open(archive) as outer:
        index = json.loads(member(outer, "index.json"))
        manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
        manifest = json.loads(member(outer, f"blobs/sha256/{manifest_digest}"))
        layer_digest = manifest["layers"][0]["digest"].removeprefix("sha256:")
        layer = member(outer, f"blobs/sha256/{layer_digest}")
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        dest.write_bytes(member(tar, "pause"))
    dest.chmod(0o755)
    return dest


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(c) for c in text.split()]


def test_pause_reaps_orphans_as_pid_1(archives: dict[str, Path], tmp_path: Path) -> None:
    pause = _extract_pause(archives["pause"], tmp_path / "pause")
    holder = subprocess.Popen(
        # --kill-child: should the test fail, killing unshare ends pause and its orphans too.
        ["unshare", "--fork", "--kill-child", "--pid", "--mount-proc", str(pause)],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for("unshare starting pause", lambda: _children(holder.pid), 60, 0.1)
        pid1 = _children(holder.pid)[0]
        # A shell that leaves two children behind: they become pause's orphans. They run
        # until killed, so they are still there to count however slow the machine is.
        subprocess.run(
            ["nsenter", "-t", str(pid1), "-p", "-m", "--", "/bin/sh", "-c",
             "sleep 600 & sleep 600 & exit 0"],
            check=True, timeout=30,
        )  # fmt: skip
        orphans = _children(pid1)
        assert len(orphans) == 2  # the sleeps, now pause's
        for pid in orphans:  # our own sleeps, by pid
            os.kill(pid, signal.SIGKILL)
        # Dead, they stay pause's children (zombies) until it reaps them.
        wait_for("pause reaping its orphans", lambda: _children(pid1) == [], 60, 0.1)
        wait_for("pause handling SIGTERM", lambda: _catches(pid1, signal.SIGTERM), 60, 0.1)
        os.kill(pid1, signal.SIGTERM)
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
