"""The certificate-expiry index that keeps ``status`` from loading cryptography."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from microkube.paths import Paths
from microkube.pki import renewal
from microkube.pki.expiry import Report
from microkube.pki.expiry_summary import earliest_expiry_summary
from microkube.pki.node import ensure_node_pki

NOW = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common", cache=tmp_path / "c")
    ensure_node_pki(certs_dir=paths.certs_dir, credentials_dir=paths.credentials_dir,
                    node_name="n1", host_ips=["127.0.0.1"], hostname="n1",
                    service_cidr="10.152.183.0/24", cluster_domain="cluster.local",
                    api_server_url="https://127.0.0.1:16443")
    paths.run_dir.mkdir(parents=True)
    return paths


def _full_report(paths: Paths, now: dt.datetime) -> tuple[str, int]:
    first = renewal.earliest_expiry(paths)
    assert first is not None
    return first.path.name, (first.not_after - now).days


def test_the_summary_matches_the_full_report_and_is_then_read_from_the_index(
        paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _full_report(paths, NOW)
    assert earliest_expiry_summary(paths, NOW) == expected

    def must_not_parse(_: Paths) -> None:
        raise AssertionError("the index should have answered")

    for parse in ("expiries", "certificate_report"):
        monkeypatch.setattr(renewal, parse, must_not_parse)
    later = NOW + dt.timedelta(days=10)
    assert earliest_expiry_summary(paths, later) == (expected[0], expected[1] - 10)


def test_a_changed_certificate_makes_the_index_stale(
        paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    earliest_expiry_summary(paths, NOW)
    cert = paths.certs_dir / "front-proxy-client.crt"
    assert cert.exists()
    # A real renewal rewrites the file, which moves its mtime.
    st = cert.stat()
    os.utime(cert, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    expected = _full_report(paths, NOW)
    original = renewal.certificate_report
    calls: list[Path] = []

    def counting(p: Paths) -> Report:
        calls.append(p.certs_dir)
        return original(p)

    monkeypatch.setattr(renewal, "certificate_report", counting)
    assert earliest_expiry_summary(paths, NOW) == expected
    assert calls == [paths.certs_dir]


def test_a_corrupt_index_is_recomputed(paths: Paths) -> None:
    earliest_expiry_summary(paths, NOW)
    (paths.run_dir / "certificate-expiry.json").write_text("{not json")
    assert earliest_expiry_summary(paths, NOW) == _full_report(paths, NOW)


def test_a_node_without_certificates_has_no_summary(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common", cache=tmp_path / "c")
    assert earliest_expiry_summary(paths, NOW) == ("", None)


def test_status_imports_no_cryptography() -> None:
    code = ("import sys, microkube.node.status, microkube.cli; "
            "print(any(m.startswith('cryptography') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_damaged_leaf_is_due_at_once_and_renewal_writes_it_anew(paths: Paths) -> None:
    from microkube.pki.expiry_summary import next_renewal

    (paths.certs_dir / "server.crt").write_text("not a certificate")
    before = dt.datetime.now(dt.UTC)
    name, due_at = next_renewal(paths)
    assert name == "server.crt" and due_at is not None and due_at <= dt.datetime.now(dt.UTC)
    assert due_at >= before
    renewed = ensure_node_pki(certs_dir=paths.certs_dir, credentials_dir=paths.credentials_dir,
                              node_name="n1", host_ips=["127.0.0.1"], hostname="n1",
                              service_cidr="10.152.183.0/24", cluster_domain="cluster.local",
                              api_server_url="https://127.0.0.1:16443").renewed
    assert "server.crt" in renewed
    name, due_at = next_renewal(paths)
    assert due_at is not None and due_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def test_a_damaged_ca_is_not_due_since_renewal_cannot_mend_it(paths: Paths) -> None:
    from microkube.pki.expiry_summary import next_renewal

    (paths.certs_dir / "front-proxy-ca.crt").write_text("")
    name, due_at = next_renewal(paths)
    assert name != "front-proxy-ca.crt"
    assert due_at is not None and due_at > dt.datetime.now(dt.UTC)


def test_a_stale_index_reads_each_certificate_file_once(
        paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recomputing wants both the expiries and the unreadable files (a damaged leaf is due at
    once), yet reads every certificate and kubeconfig once: one scan gives both."""
    from microkube.pki.expiry_summary import next_renewal

    (paths.certs_dir / "server.crt").write_text("not a certificate")
    files = sorted(paths.certs_dir.rglob("*.crt")) + sorted(paths.credentials_dir.glob("*.config"))
    assert len(files) > 3
    reads: Counter[Path] = Counter()

    def counted(read: Any) -> Any:
        def counting(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self.is_relative_to(paths.certs_dir) or self.is_relative_to(paths.credentials_dir):
                reads[self] += 1
            return read(self, *args, **kwargs)
        return counting

    for name in ("read_bytes", "read_text"):
        monkeypatch.setattr(Path, name, counted(getattr(Path, name)))
    assert next_renewal(paths)[0] == "server.crt"
    assert reads == Counter(files)
