"""``snap set microkube config="$(cat launch.yaml)"``: a launch configuration as a snap option.

A fleet of edge machines gets the same file through a gadget's defaults or one
``snap set`` each, with nothing else typed (MicroK8s's ``snap set microk8s config=``).

* Set before the node exists (a gadget default, or set before the install hook ran):
  the install hook writes it to the well-known launch file, and the node's first
  setup takes its settings, flags, datastore, addons or join from it, as from a file
  put there by hand (node/launch.py, cluster/launchjoin.py).
* Set on a node that exists: what can change on a running node applies. The
  per-daemon flags are written to the argument files and the daemons that read them
  restart; the addon steps are queued and run by the manifest deployer once the node
  is Ready (addons/launch.py). A setting that shapes the node (name, address, CIDRs,
  domain, NetworkPolicy, datastore, join) must match the node's, or the whole option
  is refused with one line naming the key, and nothing is written.

The option's text is checked against the launch file's schema before a byte is
written; what was applied last is kept in the well-known file (0600: it may hold a
join token or a database password).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microkube.config import args, node
from microkube.config import launch as launch_file
from microkube.config.launch import LaunchConfig
from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths

OPTION = "config"
# The launch file may hold a join token or a database password.
FILE_MODE = 0o600


@dataclass
class Applied:
    """What setting the option on an existing node did.

    ``restart``: the daemons (snap app suffixes: kubelite, containerd...) whose argument
    files changed, in no particular order; ``addons``: the addon steps queued, as
    (verb, tokens) pairs.
    """

    restart: set[str] = field(default_factory=set)
    addons: list[tuple[str, list[str]]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the hook's log: what changed, or that nothing did."""
        parts = []
        if self.restart:
            parts.append("restarted " + ", ".join(sorted(self.restart)))
        if self.addons:
            parts.append("queued " + ", ".join(f"{verb} {tokens[0]}"
                                               for verb, tokens in self.addons))
        return "launch configuration: " + ("; ".join(parts) or "nothing to change")


def option_text(raw: Any) -> str | None:
    """The option's value as ``snapctl get`` returned it: its YAML text, or None if unset.

    Raises UsageError if it is set to something other than text (``snap set`` with
    ``-t`` and a JSON object, say).
    """
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise UsageError(f"{OPTION}: expected the launch configuration's YAML text, "
                         f"e.g. snap set microkube {OPTION}=\"$(cat launch.yaml)\"")
    return raw


def check(paths: Paths, text: str) -> LaunchConfig:
    """The option's text checked as a launch file would be; UsageError naming the key.

    Errors say ``config: <key>: ...`` (the option the user set), not the file path.
    """
    try:
        return launch_file.parse(text, launch_file.well_known(paths))
    except UsageError as e:
        raise _as_option(paths, e) from None


def _as_option(paths: Paths, error: UsageError) -> UsageError:
    """``error`` about the well-known file, reworded as one about the option."""
    return UsageError(f"{OPTION}: "
                      + str(error).removeprefix(f"{launch_file.well_known(paths)}: "))


def unchanged(paths: Paths, text: str) -> bool:
    """True if ``text`` is what the well-known launch file already holds."""
    try:
        return launch_file.well_known(paths).read_text() == text
    except OSError:
        return False


def save(paths: Paths, text: str) -> None:
    """Write the option's text to the well-known launch file (atomically, 0600)."""
    write_atomic(launch_file.well_known(paths), text, mode=FILE_MODE)


def before_setup(paths: Paths, text: str) -> LaunchConfig:
    """For a node not set up yet: check the text and save it for the first setup to read.

    Returns the checked configuration; raises UsageError (nothing written) if it is refused.
    """
    launch = check(paths, text)
    save(paths, text)
    return launch


def apply_to_existing(paths: Paths, text: str) -> Applied:
    """Apply the option to a node already set up (see the module docstring).

    Raises UsageError, with nothing written, if a node-shaping key differs from the
    node's setting, an addon step is refused, or the text fails the schema.
    """
    from microkube.node.launch import check_addons, refuse_datastore_change

    launch = check(paths, text)
    refuse_node_changes(launch, node.load(paths.state_file))
    try:
        refuse_datastore_change(paths, launch)
        check_addons(paths, launch)
    except UsageError as e:
        raise _as_option(paths, e) from None
    applied = Applied(restart=_write_flags(paths, launch), addons=list(launch.addons))
    if applied.addons:
        queued = launch_file.pending_addons(paths)
        launch_file.save_pending_addons(paths, queued + applied.addons)
    save(paths, text)
    return applied


def refuse_node_changes(launch: LaunchConfig, current: node.NodeConfig) -> None:
    """UsageError naming the first key of ``launch`` that would reshape the existing node."""
    if launch.join is not None:
        raise UsageError(f"{OPTION}: join: this node is set up already; "
                         "run `microkube join` to join it to a cluster")
    keys = {**launch_file.NODE_SETTINGS, **launch_file.NODE_SWITCHES}
    for key, attr in keys.items():
        if attr in launch.settings and launch.settings[attr] != getattr(current, attr):
            raise UsageError(f"{OPTION}: {key}: cannot change once the node is set up "
                             f"(it is {getattr(current, attr)})")


def _write_flags(paths: Paths, launch: LaunchConfig) -> set[str]:
    """Write the launch flags into the argument files; the daemons whose files changed."""
    from microkube.services.registry import daemon_running

    changed = set()
    for part, flags in launch.flags.items():
        before = _read(paths.args_file(part))
        for name, value in flags.items():
            args.set_flag(paths, part, name, value)
        if _read(paths.args_file(part)) != before:
            changed.add(daemon_running(part))
    return changed


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
