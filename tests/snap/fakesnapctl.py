"""What snapd answers to ``snapctl`` from a snap's hook or app, for the commands microkube uses.

snapd parses the arguments (go-flags) and runs the command for the calling
snap (overlord/hookstate/ctlcmd); the ``snapctl`` client prints what comes
back, or ``error: <message>`` and exits 1. This module is that command layer,
with the same arguments, output and error text, over a ``Services`` the fake
snapd provides:

* ``get [-d] [-t] KEY...``: options from ``snap set``. A key that was never set
  is left out: ``get KEY`` prints an empty line, ``get -d KEY`` prints ``{}``,
  and neither fails (ctlcmd/get.go; only ``snap get`` fails on such a key).
* ``start [--enable] SERVICE...``, ``stop [--disable] SERVICE...``,
  ``restart [--reload] SERVICE...``: the snap's own daemon apps, named
  ``<snap>.<app>`` or ``<snap>`` for all of them.
* ``services [SERVICE...]``: the table ``snap services`` prints, sorted by app.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class SnapctlError(Exception):
    """A command snapd refuses; its message is what ``snapctl`` prints after ``error: ``."""


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``snapctl services``: the app and whether it is enabled and running."""

    app: str
    enabled: bool
    active: bool


class Services(Protocol):
    """What the fake snapd does for the commands: the snap's options and its daemon apps."""

    name: str
    options: dict[str, Any]

    def service_apps(self) -> list[str]:
        """The snap's daemon apps, in start order."""
        ...

    def start(self, apps: list[str], enable: bool) -> None:
        """Start (and first enable) the apps; started ones are left alone."""
        ...

    def stop(self, apps: list[str], disable: bool) -> None:
        """(Disable, then) stop the apps and wait until each has stopped."""
        ...

    def restart(self, apps: list[str]) -> None:
        """Stop the apps that run, then start them all."""
        ...

    def status(self, app: str) -> ServiceStatus:
        """Whether the app is enabled and whether it runs now."""
        ...


# command -> its boolean flags (long names; short ones map onto them)
FLAGS: dict[str, dict[str, str]] = {
    "get": {"-d": "document", "-t": "typed"},
    "start": {"--enable": "enable"},
    "stop": {"--disable": "disable"},
    "restart": {"--reload": "reload"},
    "services": {"--global": "global", "-g": "global", "--user": "user", "-u": "user"},
}


def run(services: Services, args: list[str]) -> tuple[str, str, int]:
    """Run one snapctl command line (without 'snapctl'); returns (stdout, stderr, exit code)."""
    try:
        return run_command(services, args), "", 0
    except SnapctlError as e:
        return "", f"error: {e}\n", 1


def parse(command: str, args: list[str]) -> tuple[set[str], list[str]]:
    """The flags set and the positional arguments, as go-flags splits them.

    Raises SnapctlError for a flag the command does not have.
    """
    known = FLAGS[command]
    flags: set[str] = set()
    positional: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            positional.extend(rest)
            break
        if arg.startswith("-") and arg != "-":
            if arg not in known:
                raise SnapctlError(f"unknown flag `{arg.lstrip('-')}'")
            flags.add(known[arg])
        else:
            positional.append(arg)
    return flags, positional


def run_command(services: Services, args: list[str]) -> str:
    """What the command prints on success. Raises SnapctlError as snapd would."""
    if not args:
        raise SnapctlError("internal error: snapctl cannot run without args")
    command, rest = args[0], args[1:]
    if command not in FLAGS:
        raise SnapctlError(f"Unknown command `{command}'. Please specify one command of: "
                           + ", ".join(sorted(FLAGS)))
    flags, positional = parse(command, rest)
    if command == "get":
        return get(services.options, services.name, positional, "document" in flags,
                   "typed" in flags)
    if command == "services":
        if {"global", "user"} <= flags:
            raise SnapctlError("cannot combine --global and --user switches.")
        apps = _services(services, positional) if positional else services.service_apps()
        return services_table(services.name, [services.status(a) for a in sorted(apps)])
    if not positional:
        raise SnapctlError("the required argument `<service> (at least 1 argument)` "
                           "was not provided")
    apps = _services(services, positional)
    if command == "start":
        services.start(apps, enable="enable" in flags)
    elif command == "stop":
        services.stop(apps, disable="disable" in flags)
    else:
        services.restart(apps)  # --reload: no app has a reload command, so systemd restarts
    return ""


def _services(services: Services, names: list[str]) -> list[str]:
    """The apps the names mean (ctlcmd/helpers.go getServiceInfos), in the snap's start order."""
    known = services.service_apps()
    wanted: set[str] = set()
    for name in names:
        if name == services.name:
            return known
        app = name[len(services.name) + 1:] if name.startswith(services.name + ".") else None
        if app not in known:
            raise SnapctlError(f'unknown service: "{name}"')
        wanted.add(app)
    return [a for a in known if a in wanted]


def services_table(snap: str, rows: list[ServiceStatus]) -> str:
    """The table snapd prints: Go's tabwriter (minwidth 5, padding 2) over four columns."""
    if not rows:
        return ""
    lines = [["Service", "Startup", "Current", "Notes"]] + [
        [f"{snap}.{r.app}", "enabled" if r.enabled else "disabled",
         "active" if r.active else "inactive", "-"] for r in rows]
    widths = [max(5, max(len(line[i]) for line in lines) + 2) for i in range(3)]
    return "".join("".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
                   + line[3] + "\n" for line in lines)


def get(options: Mapping[str, Any], snap: str, keys: list[str], document: bool,
        typed: bool) -> str:
    """``snapctl get``: what ctlcmd/get.go printValues and printPatch print."""
    if not keys:
        raise SnapctlError("get which option?")
    if typed and document:
        raise SnapctlError("cannot use -d and -t together")
    if any(":" in k for k in keys):
        raise SnapctlError("interface attributes are not served by the fake snapd")
    patch: dict[str, Any] = {}
    for key in keys:
        found, value = _lookup(options, snap, key)
        if found:
            patch[key] = value
    shown: Any = patch if document or len(keys) > 1 else patch.get(keys[0])
    if typed and shown is None:
        return "null\n"
    if isinstance(shown, str) and not typed:
        return shown + "\n"
    return ("" if shown is None else json.dumps(shown, indent="\t", sort_keys=True)) + "\n"


def _lookup(options: Mapping[str, Any], snap: str, key: str) -> tuple[bool, Any]:
    """(set, value) of a dotted key; a value on the way that is not a map is an error."""
    value: Any = options
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(value, Mapping):
            raise SnapctlError(f'snap "{snap}" option "{".".join(parts[:i])}" is not a map')
        if part not in value:
            return False, None
        value = value[part]
    return True, value
