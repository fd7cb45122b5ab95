"""Argument files: one per daemon under $SNAP_DATA/args, as in MicroK8s.

Each non-blank, non-comment line is one flag, ``--name=value`` or
``--name value``. ``${SNAP}``, ``${SNAP_DATA}``, ``${SNAP_COMMON}`` and the
node's settings (``${NODE_NAME}``, ``${NODE_IP}``...) are expanded when the
daemon starts, so a user edits a file, restarts, and the change applies.
"""

from __future__ import annotations

import re

from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths

_VAR = re.compile(r"\$\{([A-Z_]+)\}")
_FLAG = re.compile(r"^--[A-Za-z0-9][-A-Za-z0-9_.]*(=.*)?$")

# Daemons whose default argument file ships with microkube.
DAEMONS = (
    "etcd",
    "kine",
    "containerd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "flanneld",
    "netpol",
    "cluster-agent",
    "manifests",
    "apilb",
)


def path_substitutions(paths: Paths) -> dict[str, str]:
    """The roots (${SNAP}, ${SNAP_DATA}, ${SNAP_COMMON}) and ports (${DATASTORE_CLIENT_PORT}...)
    an argument file may name."""
    return {"SNAP": str(paths.snap), "SNAP_DATA": str(paths.data),
            "SNAP_COMMON": str(paths.common), **paths.ports.substitutions(),
            # A node's own etcd member; NodeContext.args puts the voters here on a standby.
            "ETCD_SERVERS": f"https://127.0.0.1:{paths.ports.datastore_client}"}


def parse(text: str, source: str, values: dict[str, str]) -> list[str]:
    """Turn an argument file into argv entries, expanding ${NAME} references."""
    argv: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        flag, _, rest = line.partition(" ")
        if not _FLAG.match(flag) or ("=" in flag and rest.strip()):
            raise UsageError(f"{source}:{lineno}: '{line}' is not a flag (expected --name=value)")
        token = flag if not rest.strip() else f"{flag}={rest.strip()}"
        argv.append(_expand(token, values, f"{source}:{lineno}"))
    return argv


def _expand(token: str, values: dict[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise UsageError(f"{where}: unknown variable ${{{m.group(1)}}}")
        return values[m.group(1)]

    return _VAR.sub(sub, token)


def read(paths: Paths, daemon: str, node_values: dict[str, str]) -> list[str]:
    """The flags ``daemon`` runs with, read from its argument file; UsageError (one line
    naming the file) for one that is missing, unreadable or malformed."""
    path = paths.args_file(daemon)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; run 'microkube start' to recreate it") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None
    return parse(text, str(path), {**path_substitutions(paths), **node_values})


def flag_value(argv: list[str], name: str) -> str | None:
    """The value of ``--name`` in parsed argv, the last one winning."""
    value = None
    for token in argv:
        if token.startswith(f"--{name}="):
            value = token.split("=", 1)[1]
        elif token == f"--{name}":
            value = "true"
    return value


def default_text(daemon: str) -> str:
    from importlib import resources  # here: status reads argument files, not the defaults

    return resources.files("microkube.config").joinpath("default_args", daemon).read_text()


def install_defaults(paths: Paths) -> list[str]:
    """Create argument files that do not exist yet; never overwrite a user's edits."""
    created = []
    for daemon in DAEMONS:
        target = paths.args_file(daemon)
        if not target.exists():
            write_atomic(target, default_text(daemon))
            created.append(daemon)
    return created


def set_flag(paths: Paths, daemon: str, name: str, value: str | None) -> None:
    """Set (or with value None, remove) ``--name`` in a daemon's argument file."""
    path = paths.args_file(daemon)
    lines = [ln for ln in path.read_text().splitlines()
             if not re.match(rf"^--{re.escape(name)}([= ]|$)", ln.strip())]
    if value is not None:
        lines.append(f"--{name}={value}")
    write_atomic(path, "\n".join(lines) + "\n")


def restore_default_flag(paths: Paths, daemon: str, name: str) -> None:
    """Put ``--name`` in a daemon's argument file back to its shipped default (or remove it
    when the default has none). A missing argument file is left alone: the next start
    installs the defaults."""
    if not paths.args_file(daemon).exists():
        return
    default = None
    for line in default_text(daemon).splitlines():
        match = re.match(rf"^--{re.escape(name)}(?:=(.*))?$", line.strip())
        if match:
            default = match.group(1) if match.group(1) is not None else "true"
    set_flag(paths, daemon, name, default)
