"""A launch file's ``join``: the node joins a cluster at its first ``microkube start``.

Instead of forming a cluster of its own, a node whose launch configuration
(config/launch.py) has ``join: <ip>:<port>/<token>/<fingerprint>`` does what
``microkube join`` does (cluster/join.py for ``joinAsWorker: true``, else
cluster/cpjoin.py), with the file's ``nodeName``/``nodeAddress`` and per-daemon
flags. Everything is checked first (schema, join string, name, addon steps):
a refused file leaves nothing on disk. A join that fails leaves the node not
set up, as ``join`` does, so a corrected file works; once joined the node is set
up and the file is not read again. The file's addon steps then run as for any
launch file (addons/launch.py). A worker has no control plane to apply addons
to, so a worker's file that names addons is refused before anything starts:
addons are cluster-wide and belong in a control plane's file.
"""

from __future__ import annotations

from pathlib import Path

from microkube.cluster.join import DEFAULT_TIMEOUT, Progress
from microkube.cluster.joinstring import JoinString, parse
from microkube.config import args
from microkube.config import launch as launch_file
from microkube.config.launch import LaunchConfig
from microkube.errors import UsageError
from microkube.paths import Paths


def pending_join(paths: Paths, explicit: Path | None) -> tuple[LaunchConfig, JoinString] | None:
    """The launch file (``explicit``, else the well-known one) and its checked join string,
    if the node was never set up (or a join of it crashed midway) and the file has ``join``;
    else None. UsageError (one line, naming the key) for a file that would be refused;
    nothing is written."""
    if paths.state_file.exists() and not paths.join_marker.exists():
        return None  # set up: node/launch.py refuses an explicit file
    source = explicit or launch_file.well_known(paths)
    if explicit is None and not source.exists():
        return None
    launch = launch_file.load(source)
    if launch.join is None:
        return None
    join = parse(launch.join, label=f"{source}: join")
    launch_file.node_config(paths, launch)  # nodeName, nodeAddress: errors name the key
    if launch.join_as_worker and launch.addons:
        raise UsageError(f"{source}: addons: a worker cannot apply addons (they are "
                         "cluster-wide and need a control plane); list them in a control "
                         "plane's launch file")
    from microkube.node.launch import check_addons

    check_addons(paths, launch)
    return launch, join


def join_from_launch(paths: Paths, explicit: Path | None, progress: Progress,
                     timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """Join the cluster a launch file names (see pending_join); a line saying what the node
    became, or None if there was nothing to join (the node then starts as before).

    ``progress`` gets the join's lines; the join is bounded by ``timeout`` s. The file's
    addon steps are recorded for ``start`` to run once Ready. Raises UsageError (nothing
    changed) or JoinError (what the join wrote is gone; the argument files stay, as after
    any failed ``join``).
    """
    found = pending_join(paths, explicit)
    if found is None:
        return None
    launch, join = found
    chosen = {k: str(v) for k, v in launch.settings.items() if k in ("node_name", "node_ip")}
    progress(f"{launch.source}: joining the cluster at {join.address} as a "
             f"{'worker' if launch.join_as_worker else 'control plane'}")
    # The daemons the join starts read the file's flags.
    paths.ensure()
    args.install_defaults(paths)
    from microkube.node.launch import apply_flags

    apply_flags(paths, launch)
    if launch.join_as_worker:
        from microkube.cluster.join import join_worker

        config = join_worker(paths, join, progress, timeout, chosen=chosen)
        role = "a worker"
    else:
        from microkube.cluster.cpjoin import SHARED, join_control_plane

        config, how = join_control_plane(paths, join, progress, timeout, chosen=chosen)
        role = "a control plane " + (f"(sharing its {config.datastore} datastore)"
                                     if how == SHARED else f"(etcd {how})")
    launch_file.save_pending_addons(paths, launch.addons)
    return f"{config.node_name} joined the cluster at {join.address} as {role}"
