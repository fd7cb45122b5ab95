"""The node's identity and network settings, kept in one small YAML file.

Values are chosen once, when the node is first prepared, and kept: a node
does not change its name or CIDRs because the host's DNS did. The file is
validated on every load so a corrupt one gives one clear line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from microkube import yamlerrors
from microkube.datastore.settings import KINDS as DATASTORE_KINDS
from microkube.datastore.settings import KINE_KINDS
from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Ports
from microkube.pki.names import is_dns1123_subdomain

# MicroK8s's defaults: they avoid 192.168.x and most 10.0.x LANs.
DEFAULT_POD_CIDR = "10.1.0.0/16"
DEFAULT_SERVICE_CIDR = "10.152.183.0/24"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
API_PORT = Ports().api_server

_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
NODE_NAME_RULE = "lower-case letters, digits, '-' and '.', starting and ending alphanumeric"
CONTROL_PLANE = "control-plane"
WORKER = "worker"
ROLES = (CONTROL_PLANE, WORKER)
# NodeConfig's fields that hold text, and those that hold text or None.
_TEXT_FIELDS = ("node_name", "node_ip", "pod_cidr", "service_cidr", "cluster_domain", "role",
                "datastore")
# An absolute cgroup path: "/"-separated names, none of them "." or "..".
_CGROUP_PATH = re.compile(r"^(/(?!\.\.?(/|$))[A-Za-z0-9_.:@-]+)+$")
_OPTIONAL_TEXT_FIELDS = ("registry_mirror", "cgroup_root", "api_server")


class NodeNameError(UsageError):
    """A node name Kubernetes would refuse (not a DNS subdomain)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"node name '{name}' is not a valid DNS subdomain ({NODE_NAME_RULE})")
        self.name = name


def suggested_name(name: str) -> str:
    """A valid node name close to ``name``: lower case, other characters turned into '-'."""
    fixed = re.sub(r"[^a-z0-9.-]+", "-", name.lower())
    fixed = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", fixed)[:253].rstrip("-.")
    return fixed or "node-1"


def name_hint(name: str, in_snap: bool) -> str:
    """How to set a valid node name: a snap option in the snap, else the environment variable."""
    if in_snap:
        return f"set a valid one with 'snap set microkube node.name={suggested_name(name)}'"
    return f"set a valid one with MICROKUBE_NODE_NAME={suggested_name(name)}"


@dataclass(frozen=True)
class NodeConfig:
    node_name: str
    node_ip: str
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    api_port: int = API_PORT
    # Where containerd sends every pull (tests: a loopback address, so no pull leaves).
    registry_mirror: str | None = None
    # The cgroup pods live under (default: the kubelet's own, /kubepods).
    cgroup_root: str | None = None
    # A control plane runs every daemon; a worker (joined with 'join --worker') only
    # containerd, the kubelet, kube-proxy and flannel, against ``api_server``.
    role: str = CONTROL_PLANE
    # A worker's control plane, the one it joined through: "https://<ip>:<port>"; None on a
    # control plane. Its clients reach every API server through its load balancer on loopback
    # (api_url); this address is the balancer's last resort (services/apilb.py).
    api_server: str | None = None
    # NetworkPolicy enforced (the netpol daemon runs); a launch file's networkPolicy: false
    # or MICROKUBE_NETWORK_POLICY=false turns it off.
    network_policy: bool = True
    # The kind of datastore (datastore/settings.py), chosen before the first start and kept;
    # an external one's endpoint and TLS files are kept 0600 under credentials/.
    datastore: str = DATASTORE_KINDS[0]

    def __post_init__(self) -> None:
        # Types first: a hand-edited or corrupt node.yaml names its key, not a TypeError.
        for name in _TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise UsageError(f"{name}: expected text, got {getattr(self, name)!r}")
        for name in _OPTIONAL_TEXT_FIELDS:
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise UsageError(f"{name}: expected text or null, got {getattr(self, name)!r}")
        if isinstance(self.api_port, bool) or not isinstance(self.api_port, int):
            raise UsageError(f"api_port: expected a port number, got {self.api_port!r}")
        if not _NODE_NAME.match(self.node_name):
            raise NodeNameError(self.node_name)
        if self.role not in ROLES:
            raise UsageError(f"role '{self.role}' is not one of {', '.join(ROLES)}")
        if self.datastore not in DATASTORE_KINDS:
            raise UsageError(f"datastore '{self.datastore}' is not one of "
                             f"{', '.join(DATASTORE_KINDS)}")
        if (self.role == WORKER) != (self.api_server is not None):
            raise UsageError("api_server is set on a worker, and only on a worker")
        _ip(self.node_ip, "node_ip")
        for name in ("pod_cidr", "service_cidr"):
            try:
                ipaddress.ip_network(getattr(self, name))
            except ValueError as e:
                raise UsageError(f"{name}: {e}") from None
        if ipaddress.ip_network(self.service_cidr).num_addresses <= 10:
            raise UsageError(f"service_cidr: {self.service_cidr} is too small: the cluster DNS "
                             "takes its address .10")
        if not is_dns1123_subdomain(self.cluster_domain):
            raise UsageError(f"cluster_domain: '{self.cluster_domain}' is not a valid DNS name")
        if not isinstance(self.network_policy, bool):
            raise UsageError(f"network_policy: '{self.network_policy}' is not true or false")
        if not 0 < self.api_port < 65536:
            raise UsageError(f"api_port {self.api_port} is not a port number")
        if self.cgroup_root is not None and not _CGROUP_PATH.match(self.cgroup_root):
            # The kubelet would resolve a relative one against its own cgroup, and '..' would
            # climb out of the tree the node cleans up on stop.
            raise UsageError(f"cgroup_root: '{self.cgroup_root}' is not an absolute cgroup path "
                             "such as /microkube/pods")

    @property
    def service_ip(self) -> str:
        """The first service IP, taken by the 'kubernetes' Service."""
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))

    @property
    def dns_ip(self) -> str:
        """The conventional cluster DNS address: .10 of the service range."""
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def is_worker(self) -> bool:
        return self.role == WORKER

    @property
    def api_url(self) -> str:
        """The API server this node's clients use, always on loopback at ``api_port``: a
        control plane's own, or a worker's API load balancer (which listens where an API
        server would, as MicroK8s's apiserver-proxy does, and passes TLS through to one of
        the cluster's API servers, whose certificates hold 127.0.0.1)."""
        return f"https://127.0.0.1:{self.api_port}"

    def substitutions(self) -> dict[str, str]:
        """Names an argument file may use, as ${NAME}."""
        return {
            "NODE_NAME": self.node_name,
            "NODE_IP": self.node_ip,
            "POD_CIDR": self.pod_cidr,
            "SERVICE_CIDR": self.service_cidr,
            "CLUSTER_DOMAIN": self.cluster_domain,
            "API_PORT": str(self.api_port),
            "DNS_IP": self.dns_ip,
            "NODE_ROLE": self.role,
            # The API server's watch cache: off on etcd, on where kine serves the datastore
            # (default_args/kube-apiserver says why).
            "WATCH_CACHE": "true" if self.datastore in KINE_KINDS else "false",
        }


def _switch(value: str, name: str) -> bool:
    """An on/off setting from text: true/yes/on/1 or false/no/off/0; UsageError otherwise."""
    text = value.strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise UsageError(f"{name}: '{value}' is not true or false")


def _ip(value: str, field: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise UsageError(f"{field}: '{value}' is not an IP address") from None


def load(path: Path, cache_dir: Path | None = None) -> NodeConfig:
    """The settings in ``path`` (through a JSON copy in ``cache_dir`` while the file is
    unchanged: yamlerrors.read). Raises UsageError for a file that is missing or broken."""
    try:
        raw = yamlerrors.read(path, cache_dir)
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the node has not been set up") from None
    except yamlerrors.YamlError as e:
        raise UsageError(f"{path}: not valid YAML{e.where}") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path}: expected a mapping of settings")
    known = {f.name for f in fields(NodeConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"{path}: unknown setting '{unknown[0]}'")
    try:
        return NodeConfig(**raw)
    except TypeError as e:
        raise UsageError(f"{path}: {e}") from None
    except UsageError as e:
        raise UsageError(f"{path}: {e}") from None


def save(path: Path, config: NodeConfig) -> None:
    import yaml  # here: load reads through yamlerrors, which imports PyYAML only to parse

    write_atomic(path, yaml.safe_dump(asdict(config), sort_keys=False))


def detect(env: Mapping[str, str] | None = None, in_snap: bool = False,
           settings: Mapping[str, Any] | None = None) -> NodeConfig:
    """Settings for a new node, from ``settings`` (a launch file's, by NodeConfig field),
    else the environment, else the host.

    ``in_snap`` chooses how an invalid name's error says to set a valid one.
    Raises UsageError for a setting Kubernetes would refuse.
    """
    env = os.environ if env is None else env
    settings = settings or {}
    overrides: dict[str, Any] = {}
    for key in ("POD_CIDR", "SERVICE_CIDR", "CLUSTER_DOMAIN", "REGISTRY_MIRROR", "CGROUP_ROOT"):
        if env.get(f"MICROKUBE_{key}"):
            overrides[key.lower()] = env[f"MICROKUBE_{key}"]
    if env.get("MICROKUBE_NETWORK_POLICY"):
        overrides["network_policy"] = _switch(env["MICROKUBE_NETWORK_POLICY"],
                                              "MICROKUBE_NETWORK_POLICY")
    overrides.update({k: v for k, v in settings.items() if k not in ("node_name", "node_ip")})
    name = settings.get("node_name") or env.get("MICROKUBE_NODE_NAME") or socket.gethostname().lower()
    ip = settings.get("node_ip") or env.get("MICROKUBE_NODE_IP") or default_route_ip() or "127.0.0.1"
    try:
        return NodeConfig(node_name=name, node_ip=ip, **overrides)
    except NodeNameError as e:
        if settings.get("node_name"):
            raise  # the launch file's: its reader names the key
        source = "" if env.get("MICROKUBE_NODE_NAME") else " (this host's name)"
        raise UsageError(f"{e}{source}; {name_hint(name, in_snap)}") from None
    except UsageError as e:
        # A value from the environment: name the variable the user set, not our field.
        field, colon, rest = str(e).partition(":")
        variable = f"MICROKUBE_{field.upper()}"
        if colon and field not in settings and env.get(variable):
            raise UsageError(f"{variable}:{rest}") from None
        raise


def load_or_create(path: Path, in_snap: bool = False) -> NodeConfig:
    """The node's settings from ``path``, or detected (see :func:`detect`) and saved there."""
    if path.exists():
        return load(path)
    config = detect(in_snap=in_snap)
    save(path, config)
    return config


def default_route_ip(route_table: Path = Path("/proc/net/route")) -> str | None:
    """The IPv4 address of the interface that holds the default route."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return None
    iface = next((cols[0] for cols in map(str.split, lines) if len(cols) > 2 and cols[1] == "00000000"), None)
    if iface is None:
        return None
    import psutil  # only needed on first start

    for addr in psutil.net_if_addrs().get(iface, []):
        if addr.family == socket.AF_INET:
            return str(addr.address)
    return None
