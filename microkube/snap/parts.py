"""Run snapcraft.yaml's parts with craft-parts, the library snapcraft itself runs them with.

The parts run as written, with two local stand-ins for what only an Ubuntu
build host has:

* ``python-runtime`` stages Ubuntu's python3.12 packages; here it copies this
  machine's own interpreter and standard library into the same place
  (usr/bin/python3.X, usr/lib/python3.X), and its filters name that version.
* build-snaps and build-packages are not installed: ``make deps`` puts the
  same tools (Go, a C compiler, libseccomp, busybox) on this machine.

The result is the prime directory: the snap's tree, laid out exactly as
snapcraft lays it out.
"""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microkube.errors import MicrokubeError
from microkube.paths import Paths
from microkube.snap.project import Project

RUNTIME_PART = "python-runtime"
SNAPCRAFT_PYTHON = "python3.12"
# Parts whose input lives outside the checkout (the component and image caches):
# craft-parts cannot tell they are outdated, so they run every time (from the caches).
ALWAYS_RERUN = ("components",)
# Top-level entries of the checkout that no part reads.
IGNORE_LOCAL = [".git", ".venv", "build", "*.snap", ".mypy_cache", ".ruff_cache",
                ".pytest_cache", "*.egg-info", "bench.json", "__pycache__"]
# Parts of the standard library no microkube command imports (and config-*/, the
# static libpython for embedding, which only -dev packages add).
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "site-packages", "dist-packages"}

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Primed:
    prime_dir: Path
    version: str
    grade: str


def host_python() -> tuple[Path, Path, str]:
    """The distribution's interpreter of this Python version, its standard library and name.

    The distribution's build (Debian's, Ubuntu's) links libpython statically and
    needs only libc, libm, libz and libexpat, so a copy of it runs from anywhere;
    a venv's own base interpreter may be a shared-library build that does not.
    """
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    exe, stdlib = Path("/usr/bin") / name, Path("/usr/lib") / name
    if not exe.exists() or not (stdlib / "os.py").exists():
        raise MicrokubeError(f"the snap bundles the distribution's {name}, which is not installed "
                             f"(apt-get install {name} {name}-venv)")
    return exe, stdlib, name


def _skip_in_stdlib(top: str) -> Callable[[str, list[str]], list[str]]:
    def ignore(folder: str, names: list[str]) -> list[str]:
        if folder != top:
            return []
        return [n for n in names if n in STDLIB_SKIP or n.startswith("config-")]

    return ignore


def stage_host_python(install_dir: Path) -> None:
    """Lay this machine's interpreter out as the python-runtime part would."""
    exe, stdlib, name = host_python()
    bin_dir = install_dir / "usr" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(exe, bin_dir / name)
    link = bin_dir / "python3"
    link.unlink(missing_ok=True)
    link.symlink_to(name)
    dest = install_dir / "usr" / "lib" / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(stdlib, dest, symlinks=True, ignore=_skip_in_stdlib(str(stdlib)))


def local_parts(parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """snapcraft.yaml's parts with the local stand-ins (see the module docstring)."""
    out = copy.deepcopy(parts)
    for spec in out.values():
        spec.pop("build-snaps", None)
        spec.pop("build-packages", None)
        spec.pop("build-attributes", None)  # enable-patchelf: snapcraft's, not craft-parts'
    runtime = out.get(RUNTIME_PART)
    if runtime is None:
        raise MicrokubeError(f"snapcraft.yaml has no '{RUNTIME_PART}' part")
    runtime.pop("stage-packages", None)
    exe, _, python_name = host_python()
    stamp = exe.stat()
    # The comment changes with the host's interpreter, so craft-parts re-runs the part then.
    runtime["override-build"] = (f"# {exe} {stamp.st_size} {int(stamp.st_mtime)}\n"
                                 f'"{sys.executable}" -m microkube.snap stage-host-python '
                                 '"$CRAFT_PART_INSTALL"\n')
    for key in ("stage", "prime"):
        if key in runtime:
            runtime[key] = [f.replace(SNAPCRAFT_PYTHON, python_name) for f in runtime[key]]
    return out


def import_python_apt() -> None:
    """craft-parts needs python-apt on a Debian or Ubuntu host; only the distribution ships it.

    Its modules are imported from the system's dist-packages, and that folder is
    dropped from sys.path again, so nothing else of the system's comes along.
    """
    try:
        importlib.import_module("apt")
        return
    except ImportError:
        pass
    system = "/usr/lib/python3/dist-packages"
    sys.path.append(system)
    try:
        for module in ("apt_pkg", "apt", "apt.progress.base"):
            importlib.import_module(module)
    except ImportError:
        raise MicrokubeError("python-apt is missing: apt-get install python3-apt") from None
    finally:
        sys.path.remove(system)


def run(project: Project, work_dir: Path, echo: Echo = print) -> Primed:
    """Run every part to the prime step; returns the prime directory and the adopted version."""
    import_python_apt()
    try:
        from craft_parts import LifecycleManager, Step, errors
    except ImportError:
        raise MicrokubeError("craft-parts is not installed: pip install craft-parts") from None

    parts = local_parts(project.parts)
    # craftctl (installed beside craft-parts) must be on the scriptlets' PATH.
    tools = str(Path(sys.executable).parent)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        lcm = LifecycleManager(
            {"parts": parts},
            application_name="microkube",
            project_name=project.name,
            cache_dir=Paths.from_env().craft_parts_cache,
            work_dir=work_dir,
            ignore_local_sources=list(IGNORE_LOCAL),
            parallel_build_count=os.cpu_count() or 1,
            project_vars_part_name=project.adopt_info,
            project_vars={"version": project.version or "", "grade": project.grade},
        )
        lcm.clean(Step.PULL, part_names=[p for p in ALWAYS_RERUN if p in parts])
        lcm.reload_state()
        actions = lcm.plan(Step.PRIME)
        with lcm.action_executor() as aex:
            for action in actions:
                verb = action.action_type.name.lower()
                reason = f" ({action.reason})" if action.reason else ""
                echo(f"snap: {action.step.name.lower()} {action.part_name}: {verb}{reason}")
                aex.execute(action, stdout=sys.stdout, stderr=sys.stderr)
        version = lcm.project_info.get_project_var("version")
        grade = lcm.project_info.get_project_var("grade") or project.grade
    except errors.PartsError as e:
        raise MicrokubeError(f"snap parts: {e.brief}" + (f" ({e.details})" if e.details else "")) from None
    if not version:
        raise MicrokubeError(f"part '{project.adopt_info}' did not set the version "
                             "(craftctl set version=...)")
    return Primed(lcm.project_info.prime_dir, version, grade)
