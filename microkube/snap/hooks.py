"""The snap's hooks (snap/hooks/* run ``microkube-hook NAME``).

* install: the node's tree, settings, argument files, configs and certificates,
  shaped by any ``node.*`` options already set (e.g. a gadget's defaults).
* configure: applies ``snap set microkube node.<setting>=...`` (see options.py).
* remove: snapd has stopped the daemons; kill what they left (containerd shims,
  pods), unmount, and remove the network links, rules and the pods' cgroup.
  snapd deletes $SNAP_DATA and $SNAP_COMMON afterwards.
* post-refresh: snapd copied $SNAP_DATA to the new revision; point its files at
  the new revision and re-check them. Certificates and the datastore are kept.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import psutil

from microkube.errors import report_errors
from microkube.paths import Paths


def _log(message: str) -> None:
    # snapd shows a hook's output when it fails, and keeps it in its journal.
    print(f"microkube: {message}", flush=True)


def _node_options() -> dict[str, str]:
    from microkube.services import snapctl
    from microkube.snap.options import node_settings

    return node_settings(snapctl.get_document("node"))


def _launch_option() -> str | None:
    """The ``config`` option's text (a launch configuration), or None if unset."""
    from microkube.services import snapctl
    from microkube.snap.launchoption import OPTION, option_text

    return option_text(snapctl.get_option(OPTION))


def _started(paths: Paths) -> bool:
    """The node has run once: its datastore holds a cluster."""
    return paths.datastore_dir.is_dir() and any(paths.datastore_dir.iterdir())


def install(paths: Paths) -> None:
    from microkube.cluster.launchjoin import pending_join
    from microkube.node import setup
    from microkube.snap.options import environment

    os.environ.update(environment(_node_options()))
    text = _launch_option()
    if text is not None and not paths.state_file.exists():
        from microkube.snap.launchoption import before_setup

        before_setup(paths, text)  # the first setup below takes the node from it
        _log("launch configuration taken from the snap option 'config'")
    if pending_join(paths, None) is not None:
        _log("the launch configuration joins a cluster: the first `microkube start` does")
        return
    ctx = setup.prepare(paths)
    _log(f"node {ctx.node.node_name} ({ctx.node.node_ip}) set up in {paths.data}")


def configure(paths: Paths) -> None:
    from microkube.config import node
    from microkube.node import setup
    from microkube.snap.options import changed

    settings = _node_options()
    if not paths.state_file.exists():
        install(paths)  # configure before install only happens if install was skipped
        return
    text = _launch_option()
    if text is not None:
        _apply_launch_option(paths, text)
    current = node.load(paths.state_file)
    started = _started(paths)
    if started and settings.get("node_ip") not in (None, current.node_ip):
        from microkube.config.address import host_addresses

        if settings["node_ip"] not in host_addresses():
            # The address left the host and the node followed it (config/address.py): the
            # option names where it was, not a change the user asks for now.
            del settings["node_ip"]
    new = changed(current, settings, started)
    if new is None:
        return
    node.save(paths.state_file, new)
    # Nothing has run yet: the configs rendered from the old settings are regenerated,
    # and prepare re-issues the certificates whose names or addresses changed.
    for path in rendered_configs(paths):
        path.unlink(missing_ok=True)
    setup.prepare(paths)
    _log(f"node settings changed: {', '.join(sorted(settings))}")


def _apply_launch_option(paths: Paths, text: str) -> None:
    """Apply a changed ``config`` option to the existing node: its addon steps now if the
    node is Ready (else the deployer runs them once it is), then restart what it changed."""
    from microkube.services import snapctl
    from microkube.snap.launchoption import apply_to_existing, unchanged

    if unchanged(paths, text):
        return
    from microkube.errors import MicrokubeError

    applied = apply_to_existing(paths, text)
    failed: MicrokubeError | None = None
    if applied.addons:
        from microkube.addons.launch import apply_pending_addons_if_ready

        try:  # not Ready: the deployer runs them once it is
            apply_pending_addons_if_ready(paths, lambda line: _log(line.rstrip()))
        except MicrokubeError as e:
            failed = e  # the step stays queued for the deployer; `snap set` says why
    running = snapctl.active(sorted(applied.restart))
    for daemon in sorted(d for d, up in running.items() if up):
        snapctl.restart(daemon)  # a stopped one reads its new flags when it starts
    _log(applied.summary())
    if failed is not None:
        raise failed


def rendered_configs(paths: Paths) -> list[Path]:
    """The files microkube.config.render writes from the node's settings."""
    return [
        paths.args_dir / "containerd.toml",
        paths.args_dir / "kubelet.yaml",
        paths.args_dir / "flannel-network-mgr-config",
        paths.cni_conf_dir / "10-flannel.conflist",
        paths.registry_hosts_dir / "_default" / "hosts.toml",
    ]


def remove(paths: Paths) -> None:
    from microkube.config import node
    from microkube.node.runtime import runtime_for
    from microkube.services.cgroups import kill_cgroup_tree, remove_cgroup
    from microkube.services.cleanup import kill_processes, node_processes, unmount_below
    from microkube.snap.leftovers import clean_network

    runtime_for(paths).clean_leftovers()  # the node's processes by pid, mounts below $SNAP_COMMON
    # ... and those of earlier revisions of the snap, and the pods that outlived them.
    stale = node_processes(paths.snap.parent, [str(paths.data.parent), str(paths.common)])
    kill_processes([c for p in stale for c in _with_children(p)])
    root = (node.load(paths.state_file).cgroup_root if paths.state_file.exists() else None) \
        or "/kubepods"
    kill_cgroup_tree(root)
    unmount_below(paths.common)
    unmount_below(paths.data)
    remove_cgroup(root)
    done = clean_network(paths.binary("kube-proxy"))
    shutil.rmtree(paths.cni_state_dir, ignore_errors=True)
    _log("removed " + (", ".join(done) or "no network leftovers"))


def _with_children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def post_refresh(paths: Paths) -> None:
    from microkube.node import setup
    from microkube.snap.revision import repoint_tree

    changed = repoint_tree(paths)
    setup.prepare(paths)  # idempotent: keeps certificates, re-checks every argument file
    _log(f"refreshed to revision {os.environ.get('SNAP_REVISION', '?')}; "
         f"{len(changed)} file(s) now point at it")


HOOKS: dict[str, Callable[[Paths], None]] = {
    "install": install,
    "configure": configure,
    "remove": remove,
    "post-refresh": post_refresh,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in HOOKS:
        print(f"usage: microkube-hook {{{','.join(HOOKS)}}}", file=sys.stderr)
        return 2
    paths = Paths.from_env()
    if not paths.in_snap:
        print("Error: hooks run inside the snap (SNAP, SNAP_DATA and SNAP_COMMON unset)",
              file=sys.stderr)
        return 2
    return report_errors(lambda: HOOKS[args[0]](paths))


if __name__ == "__main__":
    sys.exit(main())
