"""``microkube reset``: a fresh cluster on the same node, certificates kept."""

from __future__ import annotations

import shutil

from microkube.node.runtime import Progress, runtime_for
from microkube.paths import Paths


def reset(paths: Paths, progress: Progress) -> None:
    """Delete every Kubernetes object and the kubelet's and CNI's state; restart if it ran."""
    runtime = runtime_for(paths)
    was_running = runtime.stop(progress)
    runtime.clean_leftovers()
    # The datastore holds every object; the kubelet's and CNI's state refer to them.
    for d in (paths.datastore_dir, paths.kubelet_root, paths.cni_state_dir):
        progress(f"removing {d}")
        shutil.rmtree(d, ignore_errors=True)
    if was_running:
        runtime.start(progress)
