"""What a control plane hands a joining control plane, and the etcd learner it adds for it.

A control-plane joiner receives, over the CA-pinned channel only, the cluster's
shared secrets (:data:`SHARED_FILES`: the three CAs with their keys, the
service-account key and the Secrets encryption configuration) and makes its
own leaf certificates from them. On an etcd cluster its etcd member is added as
a learner here, after checking that no voter is down; the HA reconciler
(cluster/ha.py) promotes it later under the HA rule. On an external database
(PostgreSQL, MySQL) or external etcd there is no membership: the joiner gets the
store's endpoints and TLS files and uses it as every control plane does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from microkube.cluster.admission import REMOVE_HINT, MemberConflict
from microkube.cluster.roster import ControlPlane, LocalRoster
from microkube.config.node import NodeConfig
from microkube.datastore import membership, settings
from microkube.datastore.membership import Membership, MembershipError
from microkube.errors import MicrokubeError
from microkube.paths import Paths

if TYPE_CHECKING:
    from microkube.pki.ca import CertificateAuthority

# The files every control plane shares, by the name the join carries them under, and where
# each lives on a node. Keys among them are written 0600.
SHARED_FILES: dict[str, Callable[[Paths], Any]] = {
    "ca.crt": lambda p: p.pki.ca.cert,
    "ca.key": lambda p: p.pki.ca.key,
    "front-proxy-ca.crt": lambda p: p.pki.front_proxy_ca.cert,
    "front-proxy-ca.key": lambda p: p.pki.front_proxy_ca.key,
    "etcd/ca.crt": lambda p: p.pki.etcd_ca.cert,
    "etcd/ca.key": lambda p: p.pki.etcd_ca.key,
    "serviceaccount.key": lambda p: p.pki.service_account_key,
    "encryption-config.yaml": lambda p: p.encryption_config,
}
PUBLIC_FILES = ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt")


def read_shared(paths: Paths) -> dict[str, str]:
    """The shared files' text by :data:`SHARED_FILES` name; MembershipError if one is missing."""
    found = {}
    for name, where in SHARED_FILES.items():
        try:
            found[name] = where(paths).read_text()
        except OSError as e:
            raise MembershipError(f"this control plane cannot read {where(paths)}: "
                                  f"{e.strerror}") from None
    return found


def add_learner(paths: Paths, name: str, ip: str) -> dict[str, Any]:
    """Add ``name`` at ``ip`` to etcd as a learner; what its etcd needs to start.

    Returns ``{"initial_cluster": "...", "members": [member JSON, ...]}``. A
    learner left at ``ip`` by a join that failed (never named, or named ``name``)
    is removed first, so a retry succeeds. Raises MemberConflict for a name or
    address another member has, MembershipError when a voter is down or etcd refuses.
    """
    ms = Membership.for_node(paths)
    members = ms.members()
    for m in members:
        stale = m.is_learner and m.ip == ip and m.name in ("", name)
        if stale:
            ms.remove(m)
        elif m.name == name or m.ip == ip:
            raise MemberConflict(f"etcd member {m.label} ({m.ip}) already has that "
                                 f"{'name' if m.name == name else 'address'}; "
                                 + REMOVE_HINT.format(name=m.label))
    down = ms.unhealthy_voters(members)
    if down:
        raise MembershipError(f"etcd voter {', '.join(down)} does not answer; a member is never "
                              "added while a voter is down: bring it back or remove it first")
    peer = membership.peer_url(ip, paths.ports.datastore_peer)
    _, after = ms.add_learner(peer)
    membership.save_cache(paths, after)
    return {"initial_cluster": membership.initial_cluster(after, name, peer),
            "members": [m.to_json() for m in after]}


def completed(paths: Paths, name: str, ip: str) -> None:
    """Mark ``name``'s join complete when it has an etcd member at ``ip`` (a control plane;
    a worker has none), so the reconciler may promote it (cluster/ha.py)."""
    ms = Membership.for_node(paths)
    if membership.own_member(ms.members(), ip) is not None:
        ms.mark_joined(name)


def shared_datastore(paths: Paths, kind: str) -> dict[str, object]:
    """The external datastore of kind ``kind`` this node uses, as a joiner keeps it
    (datastore/settings.py ``to_share``); MembershipError if its record or files are unreadable."""
    try:
        return settings.to_share(paths, settings.load(paths, kind))
    except (MicrokubeError, OSError) as e:
        raise MembershipError(f"this control plane cannot read its datastore's settings: "
                              f"{getattr(e, 'strerror', None) or e}") from None


def control_plane_of(paths: Paths, config: NodeConfig) -> ControlPlane:
    """The control plane under ``paths`` with the settings ``config``; workers reach its API
    server at its node address. Learners are added only on etcd; an external store is shared."""
    def ca() -> CertificateAuthority:
        from microkube.pki.ca import load_ca  # cryptography: loaded by the first join only

        return load_ca(paths.pki.ca)

    host = f"[{config.node_ip}]" if ":" in config.node_ip else config.node_ip
    etcd = config.datastore == settings.ETCD
    external = settings.Datastore(config.datastore).external
    return ControlPlane(
        ca=ca, roster=LocalRoster(paths), api_server=f"https://{host}:{config.api_port}",
        shared=lambda: read_shared(paths),
        add_learner=(lambda name, ip: add_learner(paths, name, ip)) if etcd else None,
        completed=(lambda name, ip: completed(paths, name, ip)) if etcd else None,
        datastore=(lambda: shared_datastore(paths, config.datastore)) if external else None)
