"""meta/ into the primed tree, then ``snap pack``.

``snap pack`` (Debian's snapd package; it runs without the daemon) checks the
tree the way the store and snapd do (snap.yaml's schema, app commands present
and executable, hooks) before it squashes it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic
from microkube.paths import CHECKOUT
from microkube.proc import wait_with_heartbeat
from microkube.snap import snapyaml, tree
from microkube.snap.project import Project

HOOKS_SOURCE = CHECKOUT / "snap" / "hooks"
HEARTBEAT_SECONDS = 60


def snap_filename(project: Project, version: str, arch: str) -> str:
    return f"{project.name}_{version}_{arch}.snap"


def write_meta(prime: Path, project: Project, version: str, arch: str,
               hooks_source: Path = HOOKS_SOURCE) -> None:
    """meta/snap.yaml from snapcraft.yaml, and every hook of snap/hooks/ into meta/hooks/."""
    meta = prime / "meta"
    write_atomic(meta / "snap.yaml", snapyaml.render(project, version, arch), 0o644)
    hooks = meta / "hooks"
    shutil.rmtree(hooks, ignore_errors=True)
    hooks.mkdir(parents=True)
    for name in tree.HOOKS:
        src = hooks_source / name
        if not src.exists():
            raise MicrokubeError(f"hook {src} is missing")
        shutil.copyfile(src, hooks / name)
        (hooks / name).chmod(0o755)


def snap_command() -> str:
    found = shutil.which("snap")
    if found is None:
        raise MicrokubeError("'snap' is not installed; on Debian: apt-get install snapd squashfs-tools")
    return found


def check(prime: Path) -> None:
    """Validate the tree as ``snap pack`` would, without packing it."""
    proc = subprocess.run([snap_command(), "pack", "--check-skeleton", str(prime)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MicrokubeError(f"snap pack refused the tree: {_last_line(proc)}")


def pack(prime: Path, out_dir: Path, filename: str, compression: str = "xz",
         echo: Callable[[str], None] = print) -> Path:
    missing = tree.missing_paths(prime)
    if missing:
        raise MicrokubeError(f"the snap tree lacks {len(missing)} file(s) the apps need, "
                             f"e.g. {missing[0]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / filename
    target.unlink(missing_ok=True)
    argv = [snap_command(), "pack", f"--compression={compression}", f"--filename={filename}",
            str(prime), str(out_dir)]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
        wait_with_heartbeat(proc, HEARTBEAT_SECONDS,
                            lambda t: echo(f"snap: still packing ({t:.0f} s)"))
        out.seek(0)
        output = out.read()
    if proc.returncode != 0 or not target.exists():
        lines = output.strip().splitlines()
        raise MicrokubeError(f"snap pack failed: {lines[-1] if lines else proc.returncode}")
    return target


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"
