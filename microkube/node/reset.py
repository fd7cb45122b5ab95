"""``microkube reset``: a fresh cluster on the same node, certificates kept; and forgetting a
cluster altogether (after ``leave``, or a join that did not finish)."""

from __future__ import annotations

import contextlib
import shutil

from microkube.config import args
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


def forget_cluster(paths: Paths, progress: Progress) -> None:
    """Stop the node and remove everything that ties it to a cluster: its settings, certificates
    and credentials (the CA and join tokens too), datastore, kubelet, CNI and addon state.

    Argument files and images stay. Afterwards the node is as if never set up:
    the next ``start`` makes a fresh single node with a new CA. Raises
    MicrokubeError if the daemons do not stop.
    """
    from microkube.datastore.membership import cache_file

    runtime = runtime_for(paths)
    runtime.stop(progress)
    runtime.clean_leftovers()
    with contextlib.suppress(FileNotFoundError):
        cache_file(paths).unlink()  # the old cluster's voters
    # A control plane that joined started etcd into the old cluster; the next start is a
    # fresh single member again.
    for flag in ("initial-cluster", "initial-cluster-state"):
        args.restore_default_flag(paths, "etcd", flag)
    for d in (paths.datastore_dir, paths.kubelet_root, paths.cni_state_dir, paths.certs_dir,
              paths.credentials_dir):
        shutil.rmtree(d, ignore_errors=True)
    # The join marker last: a crash before it is gone is cleaned up again by the next join.
    for f in (paths.addons_state_file, paths.encryption_rotation_file, paths.cluster_agents_file,
              paths.api_servers_file, paths.apilb_state_file, paths.flannel_subnet_file,
              paths.state_file, paths.join_marker):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
