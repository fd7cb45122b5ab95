"""A node's first start from a launch configuration (its addon steps run later: addons/launch.py)."""

from __future__ import annotations

from pathlib import Path

from microkube.config import args, node
from microkube.config import launch as launch_file
from microkube.config.launch import LaunchConfig
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
        raise UsageError(f"{explicit}: this node is set up already; a launch configuration "
                         "applies only at its first start")
    source = explicit or launch_file.well_known(paths)
    if set_up or (explicit is None and not source.exists()):
        return None
    launch = launch_file.load(source)
    config = launch_file.node_config(paths, launch)
    _check_addons(paths, launch)
    paths.ensure()
    node.save(paths.state_file, config)
    args.install_defaults(paths)
    for daemon, flags in launch.flags.items():
        for name, value in flags.items():
            args.set_flag(paths, daemon, name, value)
    launch_file.save_pending_addons(paths, launch.addons)
    return launch


def _check_addons(paths: Paths, launch: LaunchConfig) -> None:
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
