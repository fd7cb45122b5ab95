"""A node's first start from a launch configuration (its addon steps run later: addons/launch.py)."""

from __future__ import annotations

from pathlib import Path

from microkube.config import args, node
from microkube.config import launch as launch_file
from microkube.config.launch import LaunchConfig
from microkube.datastore import preflight
from microkube.datastore import settings as datastore_settings
from microkube.datastore.settings import Datastore
from microkube.errors import UsageError
from microkube.paths import Paths


def first_start(paths: Paths, explicit: Path | None) -> LaunchConfig | None:
    """Apply a launch file to a node that was never set up; the config applied, or None.

    ``explicit`` is the path given to ``start --config``; without one the well-known
    file is used if present. For a node already set up, ``explicit`` is refused and
    the well-known file ignored. Everything (schema, settings, addon names and
    arguments) is checked before the node's settings, its argument files with the
    file's flags, and the addon steps to run once Ready are written.
    """
    set_up = paths.state_file.exists()
    if explicit is not None and set_up:
        refuse_datastore_change(paths, launch_file.load(explicit))
        raise UsageError(f"{explicit}: this node is set up already; a launch configuration "
                         "applies only at its first start")
    source = explicit or launch_file.well_known(paths)
    if set_up or (explicit is None and not source.exists()):
        return None
    launch = launch_file.load(source)
    if launch.join is not None:
        # Reached only when something starts the node without `microkube start` (the snap's
        # daemon at boot): that command joins first (cluster/launchjoin.py).
        raise UsageError(f"{source}: join: this node joins its cluster at its first "
                         "`microkube start`; run it")
    config = launch_file.node_config(paths, launch)
    check_addons(paths, launch)
    if launch.datastore is not None:
        # Before a byte is written: a database that does not answer leaves no node behind.
        preflight.check(paths, launch.datastore)
    paths.ensure()
    if launch.datastore is not None:
        datastore_settings.save(paths, launch.datastore)
    args.install_defaults(paths)
    if launch.datastore is not None:
        point_api_server(paths, launch.datastore)
    apply_flags(paths, launch)
    launch_file.save_pending_addons(paths, launch.addons)
    # The settings last: until they exist the node counts as never set up, so a start
    # that failed above can be run again, with a corrected file.
    node.save(paths.state_file, config)
    return launch


def refuse_datastore_change(paths: Paths, launch: LaunchConfig) -> None:
    """UsageError if ``launch`` sets a datastore other than the node's."""
    if launch.datastore is None:
        return
    current = node.load(paths.state_file).datastore
    if launch.datastore.kind != current or (
            launch.datastore.external
            and datastore_settings.load(paths, current).endpoints != launch.datastore.endpoints):
        raise UsageError(f"{launch.source}: datastore: this node's datastore is {current} "
                         "already; changing a node's datastore is not supported")


def point_api_server(paths: Paths, store: Datastore) -> None:
    """Point the API server at an external etcd cluster (its endpoints and TLS files).

    Nothing for the other kinds: etcd and kine both serve on the local etcd port.
    """
    if store.kind != datastore_settings.EXTERNAL_ETCD:
        return
    kept = datastore_settings.load(paths, store.kind).tls
    api = "kube-apiserver"
    args.set_flag(paths, api, "etcd-servers", ",".join(store.endpoints))
    for role, flag in (("ca", "etcd-cafile"), ("cert", "etcd-certfile"), ("key", "etcd-keyfile")):
        args.set_flag(paths, api, flag, str(kept[role]) if role in kept else None)


def apply_flags(paths: Paths, launch: LaunchConfig) -> None:
    """Write the launch file's per-daemon flags into the argument files (which must exist)."""
    for daemon, flags in launch.flags.items():
        for name, value in flags.items():
            args.set_flag(paths, daemon, name, value)


def check_addons(paths: Paths, launch: LaunchConfig) -> None:
    """UsageError naming ``addons[i]`` for an addon step the catalog would refuse."""
    from microkube.addons import arguments
    from microkube.addons.catalog import Catalog

    if not launch.addons:
        return
    catalog = Catalog.load(paths)
    for i, (verb, tokens) in enumerate(launch.addons):
        try:
            arguments.parse(tokens, catalog.find, disable=verb == "disable")
        except UsageError as e:
            raise UsageError(f"{launch.source}: addons[{i}] ({tokens[0]}): {e}") from None
