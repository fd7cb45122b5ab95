"""Certificate renewal's pure logic: when a leaf is due, which daemons reload which files,
the test setting for short-lived certificates, a single node's CA rotation, and a worker's
renewal requests (no root, no daemons but `sleep`)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509

from microkube.cluster.admission import sign_worker_csrs
from microkube.config.node import NodeConfig
from microkube.errors import UsageError
from microkube.paths import Paths, PkiPaths
from microkube.pki import lifetime
from microkube.pki.ca import create_ca, load_ca
from microkube.pki.certs import LeafSpec, Usage, is_issued_by, load_cert, reissue_reason
from microkube.pki.errors import CsrRefused
from microkube.pki.keys import new_key
from microkube.pki.kubeconfig import read_kubeconfig
from microkube.pki.node import LEAF_NAMES, ensure_node_pki, rotate_ca
from microkube.pki.worker import worker_request, write_renewed, write_worker_credentials
from microkube.pki.workerfiles import FILES
from microkube.services.base import Daemon, NodeContext
from microkube.services.certreaders import READERS, daemons_to_restart
from microkube.services.state import SupervisorState
from microkube.services.supervisor import Supervisor

DAY = dt.timedelta(days=1)
CONTROL_PLANE = ["etcd", "containerd", "kubelite", "cluster-agent"]
WORKER = ["apilb", "containerd", "kubelite"]


# --- when a leaf is due ----------------------------------------------------------------


@pytest.mark.parametrize("life, window", [
    (365 * DAY, 30 * DAY),            # a year: a month ahead, as before
    (90 * DAY, 30 * DAY),             # capped at a month
    (60 * DAY, 20 * DAY),             # a third below that
    (dt.timedelta(minutes=6), dt.timedelta(minutes=2)),
    (dt.timedelta(0), dt.timedelta(0)),
])
def test_the_renewal_window_is_a_third_of_the_lifetime_at_most_thirty_days(
        life: dt.timedelta, window: dt.timedelta) -> None:
    assert lifetime.renewal_window(life) == window


def test_a_certificate_falls_due_two_thirds_through_a_short_life() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(minutes=3)
    assert lifetime.renew_at(start, end) == start + dt.timedelta(minutes=2)
    assert not lifetime.is_due(start, end, start + dt.timedelta(seconds=119))
    assert lifetime.is_due(start, end, start + dt.timedelta(seconds=120))


def test_the_validity_setting_is_read_in_one_place_and_checked() -> None:
    assert lifetime.leaf_validity({}) == lifetime.LEAF_VALIDITY
    assert lifetime.leaf_validity({lifetime.VALIDITY_ENV: "240"}) == dt.timedelta(seconds=240)
    for bad in ("10", "2m", "-300", "31536001", "9" * 30):  # "9" * 30 overflowed a date
        with pytest.raises(UsageError, match=lifetime.VALIDITY_ENV):
            lifetime.leaf_validity({lifetime.VALIDITY_ENV: bad})
    # The backdate shrinks with the validity, so a short certificate is not mostly past.
    assert lifetime.backdate(dt.timedelta(seconds=240)) == dt.timedelta(seconds=24)
    assert lifetime.backdate(365 * DAY) == dt.timedelta(hours=1)


def test_a_leaf_issued_under_the_setting_lives_minutes_and_is_renewed_after_two_thirds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lifetime.VALIDITY_ENV, "300")
    ca = create_ca("test-ca")  # a CA keeps its ten years
    assert ca.cert.not_valid_after_utc - ca.cert.not_valid_before_utc > 3000 * DAY
    spec = LeafSpec("front-proxy-client", Usage.CLIENT)
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = ca.issue(spec, key.public_key(), now)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(seconds=330)
    assert reissue_reason(cert, key, spec, ca.cert, now + dt.timedelta(seconds=180)) is None
    why = reissue_reason(cert, key, spec, ca.cert, now + dt.timedelta(seconds=200))
    assert why in ("expires in 99 s", "expires in 100 s")  # notAfter drops microseconds


# --- which daemons reload which files ------------------------------------------------------


def test_renewal_never_restarts_containerd_and_restarts_only_the_readers() -> None:
    every_leaf = [*LEAF_NAMES, "ca.crt"]
    assert "containerd" not in daemons_to_restart(every_leaf, CONTROL_PLANE)
    assert set(LEAF_NAMES) <= set(READERS)  # every leaf the PKI makes is in the table
    assert daemons_to_restart(["server.crt", "server.key", "kubelet.config"], CONTROL_PLANE) \
        == {"kubelite": ["kubelet.config", "server.crt", "server.key"]}
    # etcd reads its certificate at every handshake; kine does not.
    assert daemons_to_restart(["etcd/server.crt"], CONTROL_PLANE) == {}
    assert daemons_to_restart(["etcd/server.crt"], ["kine", "kubelite"]) == \
        {"kine": ["etcd/server.crt"]}
    # Read afresh at every use: nothing restarts.
    assert daemons_to_restart(["admin.config"], CONTROL_PLANE) == {}
    # flanneld and netpol are parts of kubelite: their credentials restart it.
    assert daemons_to_restart(["cluster-agent.crt", "flannel.config", "netpol.config"],
                              CONTROL_PLANE) == \
        {"kubelite": ["flannel.config", "netpol.config"], "cluster-agent": ["cluster-agent.crt"]}


def test_a_workers_renewal_restarts_its_readers_in_start_order() -> None:
    renewed = sorted(FILES.values())
    # apilb loads kube-proxy's credential; kubelite every one (its kubelet, kube-proxy,
    # flanneld and netpol parts).
    assert daemons_to_restart(renewed, WORKER) == {
        "apilb": ["proxy.config"], "kubelite": renewed}
    # A daemon the node does not run is not named.
    assert list(daemons_to_restart(renewed, ["containerd", "kubelite"])) == ["kubelite"]


def test_an_unknown_file_restarts_everything_but_containerd() -> None:
    assert list(daemons_to_restart(["mystery.crt"], CONTROL_PLANE)) == \
        [d for d in CONTROL_PLANE if d != "containerd"]


# --- the supervisor restarts only the readers -------------------------------------------------


class _Sleeper(Daemon):
    binary = "sleep"

    def command(self, ctx: NodeContext) -> list[str]:
        return ["sleep", "1000"]


class _Containerd(_Sleeper):
    name = "containerd"


class _Kubelite(_Sleeper):
    name = "kubelite"


class _Manifests(_Sleeper):
    name = "manifests"


def test_the_supervisor_restarts_only_the_daemons_that_read_a_renewed_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    paths.ensure()
    ctx = NodeContext(paths, NodeConfig(node_name="unit", node_ip="192.0.2.7"))
    sup = Supervisor(ctx, [_Containerd(), _Kubelite(), _Manifests()], renew_certificates=lambda: None)
    runner = threading.Thread(target=sup.run, daemon=True)
    runner.start()

    def states() -> SupervisorState:
        st = SupervisorState.load(paths.supervisor_state)
        assert st is not None
        return st

    def wait(cond: object) -> None:
        deadline = time.monotonic() + 10
        while not (callable(cond) and cond()):
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.05)

    try:
        wait(lambda: paths.supervisor_state.exists()
             and all(d.state == "ready" and d.pid for d in states().daemons.values()))
        before = {n: d.pid for n, d in states().daemons.items()}
        sup._restart_readers(["kubelet.config", "proxy.config"])
        wait(lambda: states().daemons["kubelite"].pid not in (None, before["kubelite"])
             and states().daemons["kubelite"].state == "ready")
        after = states().daemons
        assert after["containerd"].pid == before["containerd"]
        assert after["manifests"].pid == before["manifests"]
        assert after["kubelite"].restarts == 0  # a planned restart is no failure
    finally:
        sup._on_signal(signal.SIGTERM, None)
        runner.join(timeout=30)


# --- a single node's CA rotation -----------------------------------------------------------


def _node(tmp_path: Path) -> dict[str, object]:
    return {"certs_dir": tmp_path / "certs", "credentials_dir": tmp_path / "credentials",
            "node_name": "n1", "host_ips": ["192.0.2.7"], "hostname": "n1",
            "service_cidr": "10.152.183.0/24", "cluster_domain": "cluster.local",
            "api_server_url": "https://127.0.0.1:16443"}


def test_rotating_the_ca_reissues_every_leaf_and_keeps_the_service_account_key(
        tmp_path: Path) -> None:
    ensure_node_pki(**_node(tmp_path))  # type: ignore[arg-type]
    pki = PkiPaths(tmp_path / "certs", tmp_path / "credentials")
    old_ca = load_ca(pki.ca)
    sa_key = pki.service_account_key.read_bytes()
    etcd_ca, front_ca = pki.etcd_ca.cert.read_bytes(), pki.front_proxy_ca.cert.read_bytes()
    old_admin = read_kubeconfig(pki.kubeconfig("admin")).client_cert()
    assert old_admin is not None

    report = rotate_ca(**_node(tmp_path))  # type: ignore[arg-type]
    new_ca = load_ca(pki.ca)
    assert new_ca.cert != old_ca.cert
    assert set(report.renewed) == {"ca.crt", *LEAF_NAMES}
    assert pki.service_account_key.read_bytes() == sa_key
    assert (pki.etcd_ca.cert.read_bytes(), pki.front_proxy_ca.cert.read_bytes()) == \
        (etcd_ca, front_ca)
    # The old admin certificate no longer verifies against the CA the API server trusts.
    assert not is_issued_by(old_admin, new_ca.cert)
    new_admin = read_kubeconfig(pki.kubeconfig("admin"))
    assert new_admin.client_cert() is not None
    assert is_issued_by(new_admin.client_cert(), new_ca.cert)  # type: ignore[arg-type]
    assert new_admin.ca_pem == new_ca.cert_pem
    assert is_issued_by(load_cert(pki.server.cert), new_ca.cert)
    # And it is stable: the next ensure keeps everything.
    again = ensure_node_pki(**_node(tmp_path))  # type: ignore[arg-type]
    assert not again.changed


# --- a worker's renewal -------------------------------------------------------------------


def test_a_renewal_signs_only_the_requested_credentials_as_the_proven_node() -> None:
    ca = create_ca("test-ca")
    request = worker_request("w1", "10.0.0.3", "w1", kinds=("kubelet", "flannel"))
    signed = sign_worker_csrs(ca, "w1", request.csrs)
    assert sorted(signed) == ["flannel", "kubelet"]
    with pytest.raises(CsrRefused, match="kubelet"):
        sign_worker_csrs(ca, "w2", request.csrs)  # another node's name
    with pytest.raises(CsrRefused, match="no credential named admin"):
        sign_worker_csrs(ca, "w1", {"admin": request.csrs["kubelet"]})


def test_a_renewed_worker_credential_keeps_its_server_and_ca(tmp_path: Path) -> None:
    pki = PkiPaths(tmp_path / "certs", tmp_path / "credentials")
    ca = create_ca("test-ca")
    joined = worker_request("w1", "10.0.0.3", "w1")
    write_worker_credentials(pki, joined, sign_worker_csrs(ca, "w1", joined.csrs),
                             ca.cert_pem, "https://10.0.0.2:16443")
    # A node-local load balancer moved the kubelet to loopback since the join.
    lb = "https://127.0.0.1:16443"
    text = pki.kubeconfig("kubelet").read_text().replace("https://10.0.0.2:16443", lb)
    pki.kubeconfig("kubelet").write_text(text)
    ca_mtime = os.stat(pki.ca.cert).st_mtime_ns
    old = read_kubeconfig(pki.kubeconfig("kubelet")).client_cert()

    renewal = worker_request("w1", "10.0.0.3", "w1", kinds=("kubelet", "kubelet-serving"))
    names = write_renewed(pki, renewal, sign_worker_csrs(ca, "w1", renewal.csrs),
                          "https://10.0.0.2:16443")
    assert names == ["kubelet.config", "kubelet.crt"]
    info = read_kubeconfig(pki.kubeconfig("kubelet"))
    assert info.server == lb and info.ca_pem == ca.cert_pem
    assert info.client_cert() != old
    assert os.stat(pki.ca.cert).st_mtime_ns == ca_mtime  # the CA file is not rewritten
    serving = load_cert(pki.kubelet.cert)
    assert serving.public_key() == renewal.keys["kubelet-serving"].public_key()
    assert isinstance(serving, x509.Certificate)


def test_the_supervisor_plans_its_next_check_for_when_the_first_leaf_falls_due(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lifetime.VALIDITY_ENV, "600")
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    paths.ensure()
    ensure_node_pki(paths.certs_dir, paths.credentials_dir, "unit", ["192.0.2.7"], "unit",
                    "10.152.183.0/24", "cluster.local", "https://127.0.0.1:16443")
    ctx = NodeContext(paths, NodeConfig(node_name="unit", node_ip="192.0.2.7"))
    sup = Supervisor(ctx, [_Containerd()], renew_certificates=lambda: ensure_node_pki(
        paths.certs_dir, paths.credentials_dir, "unit", ["192.0.2.7"], "unit",
        "10.152.183.0/24", "cluster.local", "https://127.0.0.1:16443"))
    before = load_cert(paths.pki.server.cert)
    # 600 s + a 60 s backdate: due a third (220 s) before the end, 380 s from now.
    wait = sup._check_certificates()
    assert 370 < wait < 390
    assert load_cert(paths.pki.server.cert) == before  # nothing was due yet
    assert sup.state.cert_days_left == 0
