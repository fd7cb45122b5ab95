"""``microkube inspect``: one tarball with what is needed to debug a node."""

from __future__ import annotations

import io
import json
import os
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
        if paths.log_dir.exists():
            tar.add(paths.log_dir, arcname="logs")
        progress("collecting arguments")
        if paths.args_dir.exists():
            tar.add(paths.args_dir, arcname="args")
        if paths.state_file.exists():
            tar.add(paths.state_file, arcname="node.yaml")
        progress("collecting versions and status")
        versions = {r.probe.component: r.reported or r.problem for r in component_versions(paths)}
        _add_text(tar, "versions.json", json.dumps(versions, indent=1))
        try:
            status_text = render_status(gather(paths), "yaml")
        except MicrokubeError as e:
            status_text = f"{e}\n"
        _add_text(tar, "status.yaml", status_text)


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
