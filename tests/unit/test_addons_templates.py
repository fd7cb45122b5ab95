"""Each core addon's enable and disable, against a recording stand-in for kubectl.

What is checked is pure logic: the rendered manifests are valid, namespaced,
labelled and never pull; disable deletes exactly what enable applied. The
real thing runs in tests/e2e/test_addons_*.py.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from microkube.addons.catalog import Catalog
from microkube.addons.context import AddonContext, Reporter, load_hooks
from microkube.addons.repository import load
from microkube.addons.state import EnabledAddon, ObjectRef
from microkube.config.node import NodeConfig
from microkube.kube.kubectl import objects_of
from microkube.paths import CHECKOUT, Paths

CATALOG = Catalog((load(CHECKOUT / "addons", "core"),))
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass", "StorageClass",
                  "APIService", "PersistentVolume"}


class RecordingKubectl:
    """Records what an addon asks of kubectl; every object 'exists'."""

    def __init__(self, secrets: dict[str, Any] | None = None) -> None:
        self.applied: list[str] = []
        self.dry_runs: list[str] = []
        self.deleted: list[ObjectRef] = []
        self.calls: list[list[str]] = []
        self.secrets = secrets or {}

    def apply(self, manifest: str, what: str = "") -> None:
        self.applied.append(manifest)

    def apply_dry_run(self, manifest: str, what: str = "") -> None:
        self.dry_runs.append(manifest)

    def existing(self, objects: Sequence[ObjectRef]) -> list[ObjectRef]:
        return []  # before an enable, none of its objects are there

    def delete(self, objects: Sequence[ObjectRef], timeout: float = 120, what: str = "") -> None:
        self.deleted += list(objects)

    def exists(self, resource: str, namespace: str | None) -> bool:
        return True

    def get_json(self, resource: str, namespace: str | None = None) -> Any:
        if resource.startswith("secret/"):
            return self.secrets[f"{namespace}/{resource.split('/', 1)[1]}"]
        return {"items": []}

    def rollout(self, resource: str, namespace: str, timeout: float,
                since: float | None = None) -> None:
        self.calls.append(["rollout", resource, namespace])

    def run(self, args: Sequence[str], **_: Any) -> str:
        self.calls.append(list(args))
        return ""


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    from microkube.paths import CertKeyPair
    from microkube.pki.ca import create_ca, write_ca

    p = Paths(snap=tmp_path / "snap", data=tmp_path / "data", common=tmp_path / "common")
    p.args_dir.mkdir(parents=True)
    (p.args_dir / "kubelet.yaml").write_text("kind: KubeletConfiguration\nclusterDomain: cluster.local\n")
    (p.args_dir / "kube-apiserver").write_text("--authorization-mode=RBAC,Node\n")
    p.certs_dir.mkdir(parents=True)
    write_ca(CertKeyPair.named(p.certs_dir, "ca"), create_ca("test-ca"))
    return p


def _ctx(paths: Paths, name: str, kubectl: RecordingKubectl, args: dict[str, Any] | None = None,
         previous: EnabledAddon | None = None) -> AddonContext:
    from microkube.addons import arguments
    from microkube.addons.arguments import Request

    addon = CATALOG.find(name)
    values = arguments.check(Request(addon, name, given=args or {}))
    ctx = AddonContext(addon=addon, paths=paths, node=NodeConfig("node1", "10.0.0.5"), args=values,
                       kubectl=kubectl, reporter=Reporter(lambda _: None),  # type: ignore[arg-type]
                       previous=previous)
    ctx.image = lambda name: f"microkube.local/{name}:test"  # type: ignore[method-assign]
    return ctx


def _docs(manifests: list[str]) -> list[dict[str, Any]]:
    return [d for m in manifests for d in yaml.safe_load_all(m) if d]


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", []))


@pytest.mark.parametrize("name", ["dns", "ingress", "hostpath-storage", "metrics-server",
                                  "registry", "dashboard"])
def test_enable_applies_sound_objects_and_disable_removes_them(paths: Paths, name: str) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, name, kubectl)
    hooks = load_hooks(ctx.addon)
    hooks.enable(ctx)
    docs = _docs(kubectl.applied)
    assert docs, name
    for d in docs:
        where = f"{name}: {d['kind']}/{d['metadata']['name']}"
        if d["kind"] not in CLUSTER_SCOPED:
            assert d["metadata"].get("namespace"), where + " has no namespace"
        assert d["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "microkube", where
        for c in _containers(d):
            assert c["image"].startswith("microkube.local/"), where
            assert c["imagePullPolicy"] in ("IfNotPresent", "Never"), where
            assert c["securityContext"]["runAsNonRoot"] is True, where
    assert kubectl.calls[0][0] == "rollout"
    made = ctx.objects
    assert made == [r for m in kubectl.applied for r in objects_of(m, name)]

    kubectl2 = RecordingKubectl()
    prev = EnabledAddon(version=ctx.addon.version, objects=made)
    hooks.disable(_ctx(paths, name, kubectl2, previous=prev))
    assert kubectl2.deleted == list(reversed(made))


def test_disable_without_a_record_deletes_what_the_templates_describe(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "dashboard", kubectl)
    load_hooks(ctx.addon).enable(ctx)
    kubectl2 = RecordingKubectl()
    load_hooks(ctx.addon).disable(_ctx(paths, "dashboard", kubectl2))
    assert sorted(map(str, kubectl2.deleted)) == sorted(map(str, ctx.objects))


def test_dns_upstreams_and_kubelet(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "dns", kubectl, {"upstream": "10.213.0.2,10.9.9.9:5353"})
    load_hooks(ctx.addon).enable(ctx)
    corefile = next(d for d in _docs(kubectl.applied) if d["kind"] == "ConfigMap")["data"]["Corefile"]
    assert "forward . 10.213.0.2 10.9.9.9:5353 {" in corefile
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    svc = next(d for d in _docs(kubectl.applied) if d["kind"] == "Service")
    assert svc["spec"]["clusterIP"] == "10.152.183.10"
    kubelet = yaml.safe_load((paths.args_dir / "kubelet.yaml").read_text())
    assert kubelet["clusterDNS"] == ["10.152.183.10"]
    load_hooks(ctx.addon).disable(_ctx(paths, "dns", RecordingKubectl()))
    assert "clusterDNS" not in yaml.safe_load((paths.args_dir / "kubelet.yaml").read_text())


def test_dns_defaults_to_the_hosts_resolvers(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    load_hooks(CATALOG.find("dns")).enable(_ctx(paths, "dns", kubectl))
    assert "forward . /etc/resolv.conf {" in kubectl.applied[0]


def test_ingress_default_certificate_is_copied(paths: Paths) -> None:
    from microkube.errors import UsageError

    secret = {"type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"}}
    kubectl = RecordingKubectl({"web/tls": secret, "web/opaque": {"type": "Opaque", "data": {}}})
    ctx = _ctx(paths, "ingress", kubectl, {"default-ssl-certificate": "web/tls"})
    hooks = load_hooks(ctx.addon)
    hooks.validate(ctx)
    hooks.enable(ctx)
    docs = _docs(kubectl.applied)
    copy = next(d for d in docs if d["kind"] == "Secret")
    assert copy["metadata"]["namespace"] == "ingress" and copy["data"] == secret["data"]
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    args = _containers(ds)[0]["args"]
    assert "--providers.file.filename=/etc/traefik/dynamic/dynamic.yaml" in args
    assert "_default_certificate" not in ctx.args  # no key material in the state file
    bad = _ctx(paths, "ingress", kubectl, {"default-ssl-certificate": "web/opaque"})
    with pytest.raises(UsageError, match="is not a TLS secret"):
        hooks.validate(bad)


def test_ingress_ports_and_class(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    load_hooks(CATALOG.find("ingress")).enable(_ctx(paths, "ingress", kubectl))
    docs = _docs(kubectl.applied)
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    ports = {p["hostPort"] for p in _containers(ds)[0]["ports"]}
    assert ports == {80, 443}
    assert "--global.sendanonymoususage=false" in _containers(ds)[0]["args"]
    classes = {d["metadata"]["name"]: d for d in docs if d["kind"] == "IngressClass"}
    default = classes["public"]["metadata"]["annotations"]
    assert default["ingressclass.kubernetes.io/is-default-class"] == "true"


def test_metrics_server_trusts_the_cluster_ca(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    load_hooks(CATALOG.find("metrics-server")).enable(_ctx(paths, "metrics-server", kubectl))
    docs = _docs(kubectl.applied)
    args = _containers(next(d for d in docs if d["kind"] == "Deployment"))[0]["args"]
    assert "--kubelet-insecure-tls" not in args
    assert "--kubelet-certificate-authority=/etc/metrics-server/kubelet-ca/ca.crt" in args
    ca = (paths.certs_dir / "ca.crt").read_text()
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert cm["data"]["ca.crt"].strip() == ca.strip()
    api = next(d for d in docs if d["kind"] == "APIService")
    assert "insecureSkipTLSVerify" not in api["spec"]
    assert base64.b64decode(api["spec"]["caBundle"]).decode() == ca
    tls = next(d for d in docs if d["kind"] == "Secret")
    cert = x509.load_pem_x509_certificate(base64.b64decode(tls["data"]["tls.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "metrics-server.kube-system.svc" in sans.get_values_for_type(x509.DNSName)
    assert ["wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io",
            "--timeout=120s"] in kubectl.calls


def test_registry_hosts_file_and_size(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "registry", kubectl, {"size": "5Gi"})
    hooks = load_hooks(ctx.addon)
    hooks.enable(ctx)
    hosts = paths.registry_hosts_dir / "localhost:32000" / "hosts.toml"
    assert 'server = "http://localhost:32000"' in hosts.read_text()
    docs = _docs(kubectl.applied)
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["ports"][0]["nodePort"] == 32000
    hooks.disable(_ctx(paths, "registry", RecordingKubectl(),
                       previous=EnabledAddon("3.1.2", objects=ctx.objects)))
    assert not hosts.parent.exists()


def test_hostpath_storage_keeps_data_unless_asked(paths: Paths) -> None:
    hooks = load_hooks(CATALOG.find("storage"))
    lines: list[str] = []
    ctx = _ctx(paths, "hostpath-storage", RecordingKubectl())
    hooks.enable(ctx)
    data = paths.common / "default-storage"
    (data / "pvc-1").mkdir(parents=True)
    off = _ctx(paths, "hostpath-storage", RecordingKubectl())
    off.reporter = Reporter(lines.append)
    hooks.disable(off)
    assert (data / "pvc-1").exists()
    assert any("kept the volumes' data" in ln and "--destroy-storage" in ln for ln in lines)
    destroy = _ctx(paths, "hostpath-storage", RecordingKubectl())
    destroy.args["destroy-storage"] = True
    hooks.disable(destroy)
    assert not data.exists()
    sc = next(d for d in _docs(_storage_manifests(paths)) if d["kind"] == "StorageClass")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


def _storage_manifests(paths: Paths) -> list[str]:
    kubectl = RecordingKubectl()
    load_hooks(CATALOG.find("storage")).enable(_ctx(paths, "hostpath-storage", kubectl))
    return kubectl.applied


def test_rbac_disable_edits_the_args_file(paths: Paths) -> None:
    hooks = load_hooks(CATALOG.find("rbac"))
    hooks.disable(_ctx(paths, "rbac", RecordingKubectl()))
    assert "--authorization-mode=AlwaysAllow" in (paths.args_dir / "kube-apiserver").read_text()
    hooks.enable(_ctx(paths, "rbac", RecordingKubectl()))
    assert "--authorization-mode=RBAC,Node" in (paths.args_dir / "kube-apiserver").read_text()
    assert "already enabled" in hooks.already_enabled(_ctx(paths, "rbac", RecordingKubectl()))


class ServicesKubectl(RecordingKubectl):
    """Also answers 'get services -A' with the given Services."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        super().__init__()
        self.services = services

    def run(self, args: Sequence[str], **kw: Any) -> str:
        super().run(args, **kw)
        if list(args[:3]) == ["get", "services", "-A"]:
            import json

            return json.dumps({"items": self.services})
        return ""


def _lb_service(name: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}


def test_metallb_applies_definitions_then_the_pool(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "metallb", kubectl, {"addresses": "10.0.0.200-10.0.0.210,10.0.1.0/28"})
    hooks = load_hooks(ctx.addon)
    hooks.validate(ctx)
    hooks.enable(ctx)
    base, pool = (_docs([m]) for m in kubectl.applied)
    kinds = [d["kind"] for d in base]
    assert kinds[0] == "Namespace" and "ValidatingWebhookConfiguration" not in kinds
    crds = [d for d in base if d["kind"] == "CustomResourceDefinition"]
    assert {d["spec"]["names"]["kind"] for d in crds} >= {"IPAddressPool", "L2Advertisement"}
    assert all("conversion" not in d["spec"] for d in crds)  # no webhook to convert with
    # The CRDs are waited for between the two applies; then the workloads roll out.
    wait = next(c for c in kubectl.calls if c[0] == "wait")
    assert kubectl.calls.index(wait) == 0 and "crd/ipaddresspools.metallb.io" in wait
    assert kubectl.calls[1:] == [["rollout", "deployment/controller", "metallb-system"],
                                 ["rollout", "daemonset/speaker", "metallb-system"]]
    assert [d["kind"] for d in pool] == ["IPAddressPool", "L2Advertisement"]
    assert pool[0]["spec"]["addresses"] == ["10.0.0.200-10.0.0.210", "10.0.1.0/28"]
    for d in base + pool:
        assert d["metadata"]["labels"]["microkube.io/addon"] == "metallb", d["metadata"]["name"]
        if d["kind"] not in CLUSTER_SCOPED | {"CustomResourceDefinition"}:
            assert d["metadata"]["namespace"] == "metallb-system", d["metadata"]["name"]
    workloads = {d["metadata"]["name"]: d for d in base if d["kind"] in ("Deployment", "DaemonSet")}
    controller, = _containers(workloads["controller"])
    speaker, = _containers(workloads["speaker"])
    assert controller["image"] == "microkube.local/metallb-controller:test"
    assert "--webhook-mode=disabled" in controller["args"]
    assert workloads["controller"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    assert speaker["image"] == "microkube.local/metallb-speaker:test"
    assert speaker["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
    assert workloads["speaker"]["spec"]["template"]["spec"]["hostNetwork"] is True
    for c in (controller, speaker):
        assert c["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize(("args", "message"), [
    ({}, "metallb needs the addresses it may give out, e.g. microkube enable metallb:"),
    ({"addresses": "10.152.183.100-10.152.183.110"},
     "'10.152.183.100-10.152.183.110' overlaps the service network 10.152.183.0/24"),
    ({"addresses": "10.1.0.0/24"}, "'10.1.0.0/24' overlaps the pod network 10.1.0.0/16"),
])
def test_metallb_refuses_a_pool_it_cannot_use(paths: Paths, args: dict[str, Any],
                                               message: str) -> None:
    from microkube.errors import UsageError

    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "metallb", kubectl, args)
    with pytest.raises(UsageError, match=message.replace(".", r"\.")):
        load_hooks(ctx.addon).validate(ctx)
    assert kubectl.applied == [] and kubectl.calls == []


def test_metallb_disable_removes_everything_and_releases_the_pool(paths: Paths) -> None:
    kubectl = RecordingKubectl()
    ctx = _ctx(paths, "metallb", kubectl, {"addresses": "10.0.0.200-10.0.0.210"})
    load_hooks(ctx.addon).enable(ctx)
    previous = EnabledAddon("0.15.2", dict(ctx.args), list(ctx.objects))
    services = [_lb_service("web", "10.0.0.201"), _lb_service("other", "192.0.2.7"),
                {"metadata": {"name": "plain", "namespace": "default"}, "status": {}}]
    kubectl2 = ServicesKubectl(services)
    ctx2 = _ctx(paths, "metallb", kubectl2, previous=previous)
    ctx2.args = {}  # disable takes no arguments
    load_hooks(ctx2.addon).disable(ctx2)
    assert kubectl2.deleted == list(reversed(previous.objects))
    patches = [c for c in kubectl2.calls if c[0] in ("patch", "annotate")]
    assert patches == [
        ["patch", "service", "web", "-n", "default", "--subresource=status", "--type=merge",
         "-p", '{"status":{"loadBalancer":{"ingress":null}}}'],
        ["annotate", "service", "web", "-n", "default", "metallb.io/ip-allocated-from-pool-"]]


def test_metallb_disable_without_a_record_still_renders(paths: Paths) -> None:
    kubectl = ServicesKubectl([])
    ctx = _ctx(paths, "metallb", kubectl)
    ctx.args = {}
    load_hooks(ctx.addon).disable(ctx)
    kinds = {r.kind for r in kubectl.deleted}
    assert {"Deployment", "DaemonSet", "IPAddressPool", "Namespace"} <= kinds
