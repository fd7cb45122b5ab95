"""Where every PKI file lives, named like MicroK8s so its users find them.

Callers take paths from :class:`PkiPaths` instead of rebuilding file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Kubeconfig name -> the component it is for (credentials_dir/<name>.config).
KUBECONFIGS = ("admin", "controller", "scheduler", "kubelet", "proxy", "flannel")


@dataclass(frozen=True)
class CertKeyPair:
    cert: Path
    key: Path

    @classmethod
    def named(cls, directory: Path, stem: str) -> CertKeyPair:
        return cls(directory / f"{stem}.crt", directory / f"{stem}.key")

    def exists(self) -> bool:
        return self.cert.exists() and self.key.exists()


@dataclass(frozen=True)
class PkiPaths:
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

    # --- leaves ---------------------------------------------------------------
    @property
    def server(self) -> CertKeyPair:
        """The API server's serving certificate."""
        return CertKeyPair.named(self.certs_dir, "server")

    @property
    def kubelet(self) -> CertKeyPair:
        """The kubelet's serving certificate (port 10250), signed by the cluster CA."""
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

    # --- service-account token signing ------------------------------------------
    @property
    def service_account_key(self) -> Path:
        return self.certs_dir / "serviceaccount.key"

    @property
    def service_account_pub(self) -> Path:
        return self.certs_dir / "serviceaccount.pub"

    # --- kubeconfigs ------------------------------------------------------------
    def kubeconfig(self, name: str) -> Path:
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
