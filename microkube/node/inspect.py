"""``microkube inspect``: one tarball with what is needed to debug a node."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from microkube.errors import MicrokubeError
from microkube.paths import Paths


def collect(paths: Paths, output: str | None, progress: Callable[[str], None]) -> Path:
    """Write the report tarball to ``output`` (default: ./inspection-report-<time>.tar.gz)
    and return its path; ``progress`` hears each step. Raises MicrokubeError (one line)
    when the tarball cannot be written there; nothing is left behind then."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    target = Path(output) if output else Path.cwd() / f"inspection-report-{stamp}.tar.gz"
    # Written beside the target and renamed at the end: a report that fails halfway leaves
    # no truncated tarball under the name the user asked for.
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as e:
        raise MicrokubeError(f"cannot write the report to {target}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            _write_report(paths, raw, progress)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _write_report(paths: Paths, raw: BinaryIO, progress: Callable[[str], None]) -> None:
    """The report's tarball (gzipped) into ``raw``: logs, argument files, node.yaml,
    component versions and the status."""
    from microkube.components.versions import component_versions
    from microkube.node.report import render_status
    from microkube.node.status import gather

    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        progress("collecting logs")
        skipped = _add_files(tar, paths.log_dir, "logs")
        progress("collecting arguments")
        skipped += _add_files(tar, paths.args_dir, "args")
        skipped += _add_files(tar, paths.state_file, "node.yaml")
        if skipped:
            _add_text(tar, "skipped.txt", "".join(f"{line}\n" for line in skipped))
        progress("collecting versions and status")
        versions = {r.probe.component: r.reported or r.problem for r in component_versions(paths)}
        _add_text(tar, "versions.json", json.dumps(versions, indent=1))
        try:
            status_text = render_status(gather(paths), "yaml")
        except MicrokubeError as e:
            status_text = f"{e}\n"
        _add_text(tar, "status.yaml", status_text)


def _add_files(tar: tarfile.TarFile, source: Path, arcname: str) -> list[str]:
    """Add the regular file ``source``, or every regular file below the folder ``source``,
    under ``arcname``; returns one line for each file that vanished or could not be read.

    Each file is read whole before it is added: the supervisor rotates logs by copy and
    truncate, and a file that shrinks while tarfile copies it would end the report.
    """
    if source.is_file():
        found = [(source, arcname)]
    else:
        found = [(Path(folder, name), f"{arcname}/{Path(folder, name).relative_to(source)}")
                 for folder, _, names in sorted(os.walk(source)) for name in sorted(names)]
    skipped = []
    for path, name in found:
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            data = path.read_bytes()
        except OSError as e:
            skipped.append(f"{name}: {e.strerror}")
            continue
        _add_bytes(tar, name, data, int(st.st_mtime), stat.S_IMODE(st.st_mode))
    return skipped


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    _add_bytes(tar, name, text.encode(), int(time.time()), 0o644)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, mode
    tar.addfile(info, io.BytesIO(data))
