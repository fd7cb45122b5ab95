"""The command of each daemon app in the snap: ``microkube-daemon NAME``.

snapd starts every daemon app at once, so each runner prepares the node
(under a lock), waits for the daemons it needs to serve, and then execs
its daemon, leaving snapd the process to supervise. ``--cleanup`` is the
apps' post-stop command.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time

import psutil

from microkube.errors import report_errors
from microkube.node import setup
from microkube.paths import Paths
from microkube.services.base import NodeContext
from microkube.services.registry import by_name

WAIT_STEP = 0.2


def prepare_once(paths: Paths) -> NodeContext:
    paths.var_dir.mkdir(parents=True, exist_ok=True)
    with open(paths.var_dir / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return setup.prepare(paths)


def wait_for_dependencies(ctx: NodeContext, name: str) -> None:
    for dep_name in by_name(name, ctx.node).after:
        try:
            dep = by_name(dep_name, ctx.node)
        except KeyError:
            continue  # a datastore this node does not run (etcd on a sqlite node)
        while not dep.ready(ctx):
            time.sleep(WAIT_STEP)
        dep.after_ready(ctx)  # idempotent: e.g. only missing images are imported


# How long a daemon's own after_ready work waits for the daemon to serve (s).
OWN_AFTER_READY_WAIT = 600.0


def runs_own_after_ready(ctx: NodeContext, name: str) -> bool:
    """True when no other daemon of this node waits on ``name``: no other app's runner
    then does its after_ready work (wait_for_dependencies), so its own runner must
    (kubelite's bootstrap RBAC on a control plane, which its network parts wait for)."""
    from microkube.services.base import Daemon
    from microkube.services.registry import daemons_for

    if type(by_name(name, ctx.node)).after_ready is Daemon.after_ready:
        return False  # it has none
    return not any(name in d.after for d in daemons_for(ctx.node))


def after_ready_when_serving(ctx: NodeContext, name: str) -> None:
    """Run daemon ``name``'s after_ready work in a detached process once it serves.

    The runner execs the daemon right after this, so the work runs in a grandchild
    (the child that forks it is reaped here, and init adopts the grandchild): the
    daemon never sees a child it did not start. Errors are printed to the app's log.
    """
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork():
            os._exit(0)
        daemon = by_name(name, ctx.node)
        deadline = time.monotonic() + OWN_AFTER_READY_WAIT
        while not daemon.ready(ctx):
            if time.monotonic() > deadline:
                print(f"{name} did not serve within {OWN_AFTER_READY_WAIT:.0f} s: "
                      "its after-ready work did not run", flush=True)
                os._exit(1)
            time.sleep(WAIT_STEP)
        daemon.after_ready(ctx)
        os._exit(0)
    except BaseException as e:  # a forked child must never return into the runner
        print(f"{name}: after-ready work failed: {e}", flush=True)
        os._exit(1)


def run(name: str) -> None:
    from microkube.config.address import AddressLost
    from microkube.datastore.peermove import PeerMoveRefused

    try:
        ctx = prepare_once(Paths.from_env())
    except (AddressLost, PeerMoveRefused) as e:
        # The node's address moved and it may not start (its line names the fix): idle, since
        # snapd would answer an exit with a restart every two seconds.
        print(f"{name} does not start: {e}", flush=True)
        while True:
            signal.pause()
    try:
        daemon = by_name(name, ctx.node)
    except KeyError:
        # snapd starts every app; a datastore this node does not use (etcd on a sqlite
        # node) idles instead of exiting, which snapd would answer with a restart loop.
        print(f"{name} is not one of this node's daemons (datastore {ctx.node.datastore}); "
              "idle", flush=True)
        while True:
            signal.pause()
    wait_for_dependencies(ctx, name)
    while not daemon.can_start(ctx):
        time.sleep(WAIT_STEP)
    daemon.prepare(ctx)
    argv = daemon.command(ctx)
    if runs_own_after_ready(ctx, name):
        after_ready_when_serving(ctx, name)
    os.execve(argv[0], argv, daemon.environment(ctx))


def cleanup(name: str) -> None:
    """The post-stop command: snapd runs it after every stop of the app, restarts included.

    Pods run on while only kubelite (the kubelet's process) restarts, so their volumes stay
    mounted then.
    containerd's stop ends the pods (their shims went with containerd's cgroup), so
    after it the pods' processes, mounts and cgroups go, as after the supervisor's stop.
    """
    ctx = setup.load_context(Paths.from_env())
    if name == "kubelite" and by_name("containerd", ctx.node).ready(ctx):
        return
    by_name(name, ctx.node).cleanup(ctx)
    if name == "containerd":
        stop_pods(ctx)


def _is_shim(proc: psutil.Process) -> bool:
    try:
        return os.path.basename(proc.cmdline()[0]).startswith("containerd-shim")
    except (psutil.Error, IndexError):
        return False


def stop_pods(ctx: NodeContext) -> None:
    from microkube.services.cgroups import kill_cgroup_tree, remove_cgroup
    from microkube.services.cleanup import kill_processes, node_processes, unmount_below

    paths = ctx.paths
    # Shims (of any revision of the snap) that outlived containerd; never another daemon.
    found = node_processes(paths.snap.parent, [str(paths.data.parent), str(paths.common)])
    kill_processes([p for p in found if _is_shim(p)])
    root = ctx.node.cgroup_root or "/kubepods"
    kill_cgroup_tree(root)
    unmount_below(paths.containerd_state)
    unmount_below(paths.common)
    remove_cgroup(root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="microkube-daemon")
    ap.add_argument("daemon")
    ap.add_argument("--cleanup", action="store_true", help="undo what the stopped daemon left")
    opts = ap.parse_args(argv)
    try:
        by_name(opts.daemon)
    except KeyError:
        print(f"Error: unknown daemon '{opts.daemon}'", file=sys.stderr)
        return 2
    return report_errors(lambda: cleanup(opts.daemon) if opts.cleanup else run(opts.daemon))


if __name__ == "__main__":
    sys.exit(main())
