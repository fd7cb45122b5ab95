"""``microkube reset``: a fresh cluster on the same node, certificates kept."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from microkube.node import control
from microkube.paths import Paths


def reset(paths: Paths, progress: Callable[[str], None]) -> None:
    was_running = control.is_running(paths)
    if was_running:
        control.stop(paths, progress)
    control.clean_after_crash(paths)
    # The datastore holds every object; the kubelet's and CNI's state refer to them.
    for d in (paths.datastore_dir, paths.kubelet_root, paths.cni_state_dir):
        progress(f"removing {d}")
        shutil.rmtree(d, ignore_errors=True)
    if was_running:
        control.start(paths, progress)
