"""Every location and port microkube reads, writes or listens on, decided in one place.

Inside a snap the three roots are snapd's SNAP, SNAP_DATA and SNAP_COMMON.
Outside a snap the same tree lives under one root directory
(MICROKUBE_ROOT, default /var/lib/microkube) so tests, and several nodes
on one machine, can each have their own; the read-only tree of binaries
and defaults (MICROKUBE_SNAP) defaults to the checkout's build/snap.

Build caches (components, Go binaries, images, craft-parts) live under one
cache root: MICROKUBE_CACHE, else $XDG_CACHE_HOME/microkube, else
~/.cache/microkube. PKI file names (:class:`PkiPaths`) and the ports
(:class:`Ports`) are here too, so no module rebuilds them. This module
imports nothing of microkube: everything may import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

DEFAULT_ROOT = Path("/var/lib/microkube")
# The checkout this package lives in: microkube/paths.py -> <checkout>/.
CHECKOUT = Path(__file__).resolve().parent.parent
# Kubeconfig name -> the component it is for (credentials_dir/<name>.config).
KUBECONFIGS = ("admin", "controller", "scheduler", "kubelet", "proxy", "flannel", "netpol")


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """microkube's build cache: MICROKUBE_CACHE, else $XDG_CACHE_HOME/microkube,
    else ~/.cache/microkube (``env`` defaults to os.environ)."""
    env = os.environ if env is None else env
    if env.get("MICROKUBE_CACHE"):
        return Path(env["MICROKUBE_CACHE"]).absolute()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "microkube"


# The variables that name microkube's trees outside a snap.
TREE_VARIABLES = ("MICROKUBE_ROOT", "MICROKUBE_SNAP", "MICROKUBE_CACHE")


def absolute_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default os.environ) for a child that runs in another folder: each of
    TREE_VARIABLES that is set is made absolute against this process's working folder."""
    env = dict(os.environ if env is None else env)
    for name in TREE_VARIABLES:
        if env.get(name):
            env[name] = os.path.abspath(env[name])
    return env


# Named tuples, not dataclasses: every command imports this module, and dataclasses (with
# inspect and ast behind it) cost `microkube kubectl` a fifth of its Python.
class Ports(NamedTuple):
    """The TCP/UDP ports a node uses (MicroK8s's defaults, so its users know them)."""

    api_server: int = 16443
    datastore_client: int = 12379
    datastore_peer: int = 12380
    datastore_metrics: int = 12381  # loopback, plain HTTP
    cluster_agent: int = 25000
    kubelet: int = 10250
    kubelet_healthz: int = 10248  # loopback, plain HTTP
    kube_proxy_metrics: int = 10249  # loopback, plain HTTP
    kube_proxy_healthz: int = 10256  # loopback, plain HTTP
    controller_manager: int = 10257  # loopback, self-signed HTTPS
    flannel_healthz: int = 10258  # loopback, plain HTTP
    scheduler: int = 10259  # loopback, self-signed HTTPS
    netpol_ready: int = 10265  # loopback, plain HTTP
    flannel_vxlan: int = 8472  # UDP

    def substitutions(self) -> dict[str, str]:
        """The ports as ${NAME} values for argument files (DATASTORE_CLIENT_PORT...).

        The API server's port is left out: it is the node's own setting
        (NodeConfig.api_port, ${API_PORT}), defaulting to ``api_server``.
        """
        return {f"{name.upper()}_PORT": str(value) for name, value in self._asdict().items()
                if name != "api_server"}


class CertKeyPair(NamedTuple):
    """A certificate file and its private key file."""

    cert: Path
    key: Path

    @classmethod
    def named(cls, directory: Path, stem: str) -> CertKeyPair:
        """``directory/<stem>.crt`` and ``directory/<stem>.key``."""
        return cls(directory / f"{stem}.crt", directory / f"{stem}.key")

    def exists(self) -> bool:
        return self.cert.exists() and self.key.exists()


class PkiPaths(NamedTuple):
    """Where every PKI file lives, named like MicroK8s so its users find them."""

    certs_dir: Path
    credentials_dir: Path

    # --- certificate authorities (never re-issued by microkube) ---------------
    @property
    def ca(self) -> CertKeyPair:
        """The cluster CA: API server clients, kubelets, service serving."""
        return CertKeyPair.named(self.certs_dir, "ca")

    @property
    def front_proxy_ca(self) -> CertKeyPair:
        """Trusted only for the aggregation layer's request-header proxy."""
        return CertKeyPair.named(self.certs_dir, "front-proxy-ca")

    @property
    def etcd_dir(self) -> Path:
        return self.certs_dir / "etcd"

    @property
    def etcd_ca(self) -> CertKeyPair:
        """The datastore's own CA, so a datastore client cert is no API server login."""
        return CertKeyPair.named(self.etcd_dir, "ca")

    def is_ca_cert(self, path: Path) -> bool:
        """Whether ``path`` is one of the three CA certificates (which renewal never
        re-issues), judged by its place alone, so it holds for an unreadable file too."""
        return path in (self.ca.cert, self.front_proxy_ca.cert, self.etcd_ca.cert)

    # --- leaves ---------------------------------------------------------------
    @property
    def server(self) -> CertKeyPair:
        """The API server's serving certificate."""
        return CertKeyPair.named(self.certs_dir, "server")

    @property
    def kubelet(self) -> CertKeyPair:
        """The kubelet's serving certificate (Ports.kubelet), signed by the cluster CA."""
        return CertKeyPair.named(self.certs_dir, "kubelet")

    @property
    def apiserver_kubelet_client(self) -> CertKeyPair:
        return CertKeyPair.named(self.certs_dir, "apiserver-kubelet-client")

    @property
    def front_proxy_client(self) -> CertKeyPair:
        return CertKeyPair.named(self.certs_dir, "front-proxy-client")

    @property
    def etcd_server(self) -> CertKeyPair:
        """Serves datastore clients and peers (so it carries both usages)."""
        return CertKeyPair.named(self.etcd_dir, "server")

    @property
    def etcd_apiserver_client(self) -> CertKeyPair:
        return CertKeyPair.named(self.etcd_dir, "apiserver-client")

    @property
    def cluster_agent(self) -> CertKeyPair:
        """The cluster agent's serving certificate (Ports.cluster_agent), signed by the cluster CA."""
        return CertKeyPair.named(self.certs_dir, "cluster-agent")

    # --- service-account token signing ------------------------------------------
    @property
    def service_account_key(self) -> Path:
        return self.certs_dir / "serviceaccount.key"

    @property
    def service_account_pub(self) -> Path:
        return self.certs_dir / "serviceaccount.pub"

    # --- kubeconfigs ------------------------------------------------------------
    def kubeconfig(self, name: str) -> Path:
        """``credentials_dir/<name>.config``; KeyError for a name not in KUBECONFIGS."""
        if name not in KUBECONFIGS:
            raise KeyError(f"unknown kubeconfig {name!r}")
        return self.credentials_dir / f"{name}.config"

    @property
    def kubeconfigs(self) -> dict[str, Path]:
        return {name: self.kubeconfig(name) for name in KUBECONFIGS}

    def display_name(self, path: Path) -> str:
        """A short name for reports: relative to its directory (``etcd/server.crt``)."""
        for base in (self.certs_dir, self.credentials_dir):
            if path.is_relative_to(base):
                return str(path.relative_to(base))
        return str(path)


class _Roots(NamedTuple):
    snap: Path  # read-only: binaries, default args, core addons, image archives
    data: Path  # per-revision state: args, certs, credentials, datastore
    common: Path  # shared across revisions: runtime roots, logs, sockets
    in_snap: bool
    cache: Path  # build caches (see cache_root)
    ports: Ports


class Paths(_Roots):
    """The node's directory tree. Build one with :meth:`from_env`; ``_replace`` gives a copy
    with some roots changed. ``cache`` defaults to :func:`cache_root`'s answer now."""

    __slots__ = ()

    def __new__(cls, snap: Path, data: Path, common: Path, in_snap: bool = False,
                cache: Path | None = None, ports: Ports | None = None) -> Paths:
        return super().__new__(cls, snap, data, common, in_snap,
                               cache_root() if cache is None else cache,
                               Ports() if ports is None else ports)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        """The tree the environment names (``env`` defaults to os.environ)."""
        env = os.environ if env is None else env
        cache = cache_root(env)
        if env.get("SNAP") and env.get("SNAP_DATA") and env.get("SNAP_COMMON"):
            return cls(Path(env["SNAP"]), Path(env["SNAP_DATA"]), Path(env["SNAP_COMMON"]), True,
                       cache)
        # Absolute: daemons run with their own working folder, so a relative root given
        # from the shell would name another tree for them.
        root = Path(env.get("MICROKUBE_ROOT") or DEFAULT_ROOT).absolute()
        snap = Path(env.get("MICROKUBE_SNAP") or CHECKOUT / "build" / "snap").absolute()
        return cls(snap, root / "data", root / "common", cache=cache)

    # --- the read-only tree -------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        return self.snap / "bin"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def cni_bin_dir(self) -> Path:
        return self.snap / "opt" / "cni" / "bin"

    def component_dir(self, dest: str) -> Path:
        """Where a component's binaries are installed: its manifest ``dest`` is "cni"
        (the CNI plugins' folder) or "bin"."""
        return self.cni_bin_dir if dest == "cni" else self.bin_dir

    @property
    def images_dir(self) -> Path:
        return self.snap / "images"

    @property
    def default_args_dir(self) -> Path:
        return self.snap / "default-args"

    @property
    def core_addons_dir(self) -> Path:
        shipped = self.snap / "addons"
        # A checkout that has not installed its build tree uses the source folder.
        return shipped if shipped.exists() or self.in_snap else CHECKOUT / "addons"

    @property
    def addon_images_dir(self) -> Path:
        """Image archives imported when their addon is enabled (not at start)."""
        return self.images_dir / "addons"

    @property
    def versions_file(self) -> Path:
        return self.snap / "versions.json"

    # --- per-node state -----------------------------------------------------
    @property
    def args_dir(self) -> Path:
        return self.data / "args"

    def args_file(self, daemon: str) -> Path:
        return self.args_dir / daemon

    @property
    def certs_dir(self) -> Path:
        return self.data / "certs"

    @property
    def credentials_dir(self) -> Path:
        return self.data / "credentials"

    @property
    def pki(self) -> PkiPaths:
        """Every certificate, key and kubeconfig file of the node."""
        return PkiPaths(self.certs_dir, self.credentials_dir)

    def kubeconfig(self, user: str) -> Path:
        """``credentials/<user>.config``; KeyError for a user microkube does not write."""
        return self.pki.kubeconfig(user)

    @property
    def cluster_tokens_file(self) -> Path:
        """Join tokens, as SHA-256 hashes (microkube.cluster.tokens)."""
        return self.credentials_dir / "cluster-tokens.json"

    @property
    def var_dir(self) -> Path:
        return self.data / "var"

    @property
    def datastore_dir(self) -> Path:
        return self.var_dir / "etcd"

    @property
    def encryption_config(self) -> Path:
        """The API server's EncryptionConfiguration: the keys Secrets are encrypted with (0600)."""
        return self.credentials_dir / "encryption-config.yaml"

    @property
    def encryption_rotation_file(self) -> Path:
        """The stage of a key rotation under way (``microkube secrets-encryption rotate-keys``)."""
        return self.var_dir / "encryption-rotation.json"

    @property
    def state_file(self) -> Path:
        return self.var_dir / "node.yaml"

    @property
    def cluster_agents_file(self) -> Path:
        """The cluster agents a joined node reaches its control planes at (cluster/peers.py)."""
        return self.var_dir / "cluster-agents.json"

    @property
    def api_servers_file(self) -> Path:
        """A worker's saved list of API servers (JSON ``{"servers": ["ip:port", ...]}``),
        kept by its API load balancer (services/apilb.py); never empty once written."""
        return self.var_dir / "api-servers.json"

    @property
    def join_marker(self) -> Path:
        """Present while a join runs: a node that holds it after a crash joined only half-way."""
        return self.var_dir / "join-in-progress"

    # --- runtime roots, sockets and logs -------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.common / "run"

    @property
    def yaml_cache_dir(self) -> Path:
        """JSON copies of the YAML files status reads (microkube/yamlerrors.py)."""
        return self.run_dir / "yaml"

    @property
    def supervisor_state(self) -> Path:
        return self.run_dir / "supervisor.json"

    @property
    def supervisor_lock(self) -> Path:
        """Locked by the running supervisor for its whole life (services/state.py)."""
        return self.run_dir / "supervisor.lock"

    @property
    def apilb_state_file(self) -> Path:
        """Which API server a worker's load balancer uses now, and which answer (JSON, written
        by the balancer on every change; present only while it serves)."""
        return self.run_dir / "apilb.json"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        return self.common / "var" / "lib" / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run_dir / "containerd"

    @property
    def registry_hosts_dir(self) -> Path:
        return self.args_dir / "certs.d"

    @property
    def kubelet_root(self) -> Path:
        return self.common / "var" / "lib" / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        """The CNI network configuration containerd reads (users may edit it)."""
        return self.args_dir / "cni-network"

    @property
    def cni_state_dir(self) -> Path:
        """The CNI plugins' scratch space (IP allocations, flannel's per-pod data)."""
        return self.common / "var" / "lib" / "cni"

    @property
    def flannel_subnet_file(self) -> Path:
        return self.run_dir / "flannel" / "subnet.env"

    @property
    def log_dir(self) -> Path:
        return self.common / "var" / "log"

    def log_file(self, daemon: str) -> Path:
        return self.log_dir / f"{daemon}.log"

    @property
    def addon_repos_dir(self) -> Path:
        return self.common / "addons"

    @property
    def addons_state_file(self) -> Path:
        return self.var_dir / "addons.yaml"

    @property
    def addon_status_cache(self) -> Path:
        """status's copy of the addon listing, kept while the files it came from are
        unchanged (microkube/addons/listing.py)."""
        return self.yaml_cache_dir / "addon-status.json"

    # --- auto-deployed manifests and charts (microkube.manifests) --------------
    @property
    def manifests_dir(self) -> Path:
        """The folder whose manifests and Helm charts are applied on their own
        ($SNAP_COMMON/manifests: it outlives a refresh, as users' files should)."""
        return self.common / "manifests"

    @property
    def manifests_state_file(self) -> Path:
        """What each file of :attr:`manifests_dir` was last applied as: its digest, the kinds
        it created (so removal and pruning know where to look by label)."""
        return self.var_dir / "manifests.json"

    @property
    def manifests_report_file(self) -> Path:
        """The running deployer's last outcome per file, read by ``status``; written after
        its first pass, removed before it starts (so its presence means "serving")."""
        return self.run_dir / "manifests-report.json"

    @property
    def helm_home(self) -> Path:
        """The bundled helm's cache, configuration and data (HELM_*_HOME) for the deployer."""
        return self.common / "var" / "lib" / "helm"

    @property
    def kubectl_cache_dir(self) -> Path:
        """kubectl's discovery and HTTP cache (KUBECACHEDIR) when it runs with the node's admin
        credentials: one per node, so ``microkube kubectl`` does not run discovery again
        for every HOME, and one node's cache never answers for another's API server."""
        return self.common / "var" / "cache" / "kubectl"

    # --- build caches (per user, shared by every node and checkout) ----------
    @property
    def components_cache(self) -> Path:
        """Built components: ``<name>-<key>/bin/``."""
        return self.cache / "components"

    @property
    def go_work_dir(self) -> Path:
        """Throw-away Go work modules, one folder per build."""
        return self.cache / "work"

    @property
    def go_build_lock(self) -> Path:
        """The lock that lets one Go build run at a time per cache."""
        return self.cache / "build.lock"

    @property
    def addon_binaries_cache(self) -> Path:
        """Go binaries built for addon images: ``<name>-<key>/<name>``."""
        return self.cache / "addon-binaries"

    @property
    def images_cache(self) -> Path:
        """Image archives: ``<name>-<hash12>.tar``."""
        return self.cache / "images"

    @property
    def craft_parts_cache(self) -> Path:
        """craft-parts' download cache for the snap build."""
        return self.cache / "craft-parts"

    def ensure(self) -> None:
        """Create the writable tree; credentials are private to root."""
        for d in (self.args_dir, self.certs_dir, self.var_dir, self.run_dir, self.log_dir,
                  self.containerd_root, self.kubelet_root, self.addon_repos_dir,
                  self.manifests_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.credentials_dir, 0o700)
        os.chmod(self.certs_dir, 0o700)
