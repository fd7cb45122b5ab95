"""Every location microkube reads or writes, decided in one place.

Inside a snap the three roots are snapd's SNAP, SNAP_DATA and SNAP_COMMON.
Outside a snap the same tree lives under one root directory
(MICROKUBE_ROOT, default /var/lib/microkube) so tests, and several nodes
on one machine, can each have their own; the read-only tree of binaries
and defaults (MICROKUBE_SNAP) defaults to the checkout's build/snap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/microkube")
# The checkout this package lives in: microkube/paths.py -> <checkout>/.
CHECKOUT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Paths:
    """The node's directory tree. Build one with :meth:`from_env`."""

    snap: Path  # read-only: binaries, default args, core addons, image archives
    data: Path  # per-revision state: args, certs, credentials, datastore
    common: Path  # shared across revisions: runtime roots, logs, sockets
    in_snap: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        if env.get("SNAP") and env.get("SNAP_DATA") and env.get("SNAP_COMMON"):
            return cls(Path(env["SNAP"]), Path(env["SNAP_DATA"]), Path(env["SNAP_COMMON"]), True)
        root = Path(env.get("MICROKUBE_ROOT") or DEFAULT_ROOT)
        snap = Path(env.get("MICROKUBE_SNAP") or CHECKOUT / "build" / "snap")
        return cls(snap, root / "data", root / "common")

    # --- the read-only tree -------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        return self.snap / "bin"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def cni_bin_dir(self) -> Path:
        return self.snap / "opt" / "cni" / "bin"

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

    def kubeconfig(self, user: str) -> Path:
        return self.credentials_dir / f"{user}.config"

    @property
    def var_dir(self) -> Path:
        return self.data / "var"

    @property
    def datastore_dir(self) -> Path:
        return self.var_dir / "etcd"

    @property
    def state_file(self) -> Path:
        return self.var_dir / "node.yaml"

    # --- runtime roots, sockets and logs -------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.common / "run"

    @property
    def supervisor_state(self) -> Path:
        return self.run_dir / "supervisor.json"

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
        return self.data / "args" / "certs.d"

    @property
    def kubelet_root(self) -> Path:
        return self.common / "var" / "lib" / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.data / "args" / "cni-network"

    @property
    def cni_state_dir(self) -> Path:
        """The CNI plugins' scratch state (IP reservations); stale once no pod runs."""
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

    def ensure(self) -> None:
        """Create the writable tree; credentials are private to root."""
        for d in (self.args_dir, self.certs_dir, self.var_dir, self.run_dir, self.log_dir,
                  self.containerd_root, self.kubelet_root, self.addon_repos_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.credentials_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.credentials_dir, 0o700)
        os.chmod(self.certs_dir, 0o700)
