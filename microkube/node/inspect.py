"""``microkube inspect``: one tarball with what is needed to debug a node."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.paths import Paths


def collect(paths: Paths, output: str | None, progress: Callable[[str], None]) -> Path:
    from microkube.components.versions import component_versions
    from microkube.node.report import render_status
    from microkube.node.status import gather

    stamp = time.strftime("%Y%m%d_%H%M%S")
    target = Path(output) if output else Path.cwd() / f"inspection-report-{stamp}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
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
    return target


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
