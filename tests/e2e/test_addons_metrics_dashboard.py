"""metrics-server, dashboard (in headless Chromium), rbac and helm on a real node."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.addonrepo import one_addon_repository
from tests.e2e import browser
from tests.e2e.addon_support import (
    addon_node,
    addon_state,
    assert_all_gone,
    one_line_error,
    require_node_and_images,
    status_addons,
)
from tests.testnode import TestNode

pytestmark = pytest.mark.e2e
CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    require_node_and_images("metrics-server", "dashboard")
    yield from addon_node(tmp_path_factory, "tools")


def _numbers(line: str) -> bool:
    cols = line.split()
    return len(cols) >= 3 and cols[1].endswith("m") and cols[1][:-1].isdigit()


def test_metrics_server_gives_kubectl_top_numbers(node: TestNode) -> None:
    out = node.run("enable", "metrics-server").stdout
    assert "ready in" in out, out
    deploy = node.kubectl_json("get", "deployment", "metrics-server", "-n", "kube-system")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--kubelet-insecure-tls" not in args
    assert any(a.startswith("--kubelet-certificate-authority=") for a in args)
    api = node.kubectl_json("get", "apiservice", "v1beta1.metrics.k8s.io")
    assert not api["spec"].get("insecureSkipTLSVerify")

    def top_nodes() -> bool:
        lines = node.kubectl("top", "nodes", check=False).splitlines()
        return any(ln.startswith(node.name) and _numbers(ln) for ln in lines)

    node.wait_for("kubectl top nodes", top_nodes, timeout=90, every=2)

    def top_pods() -> bool:
        lines = node.kubectl("top", "pods", "-n", "kube-system", check=False).splitlines()
        return any(ln.startswith("metrics-server-") and _numbers(ln) for ln in lines)

    node.wait_for("kubectl top pods", top_pods, timeout=90, every=2)


@pytest.mark.skipif(browser.find_tools() is None,
                    reason="no Chromium and chromedriver: apt-get install chromium chromium-driver")
def test_dashboard_in_a_browser(node: TestNode, tmp_path: Path) -> None:
    out = node.run("enable", "dashboard").stdout
    assert "create token dashboard-user" in out, out
    ip = node.kubectl("get", "service", "dashboard", "-n", "kube-system", "-o",
                      "jsonpath={.spec.clusterIP}").strip()
    token = tmp_path / "token"
    token.write_text(node.kubectl("-n", "kube-system", "create", "token", "dashboard-user"))
    shot = tmp_path / "dashboard.png"
    proc = subprocess.run(
        node.in_netns([sys.executable, "-m", "tests.e2e.browser", "--url", f"http://{ip}/",
                       "--token-file", str(token), "--node", node.name, "--pod", "dashboard-",
                       "--log-text", "microkube dashboard", "--screenshot", str(shot)]),
        capture_output=True, text=True, timeout=240, cwd=CHECKOUT)
    assert proc.returncode == 0, proc.stderr
    import json

    seen = json.loads(proc.stdout)
    assert seen["user"] == "system:serviceaccount:kube-system:dashboard-user"
    assert "not accepted" in seen["bad_token_error"]
    assert node.name in seen["nodes"] and "Ready" in seen["nodes"]
    assert "metrics-server" in seen["pods"]
    assert "metrics-server" in seen["addons"]
    assert shot.stat().st_size > 10_000


def test_rbac_is_on_and_can_be_turned_off_and_on(node: TestNode) -> None:
    out = node.run("enable", "rbac").stdout
    assert "already enabled" in out and "RBAC,Node" in out
    node.kubectl("create", "serviceaccount", "nobody")
    token = node.kubectl("create", "token", "nobody").strip()
    as_nobody = ["kubectl", "--kubeconfig=/dev/null", "--server=https://127.0.0.1:16443",
                 f"--certificate-authority={node.root}/data/certs/ca.crt", f"--token={token}",
                 "get", "secrets", "-n", "kube-system"]
    assert "forbidden" in node.run(*as_nobody, check=False).stderr
    try:
        off = node.run("disable", "rbac", check=False, timeout=240)
        args = (node.root / "data" / "args" / "kube-apiserver").read_text()
        assert "--authorization-mode=AlwaysAllow" in args
        node.wait_for("AlwaysAllow", lambda: node.run(*as_nobody, check=False).returncode == 0,
                      timeout=90)
        assert "rbac" in status_addons(node)["disabled"]
        assert off.returncode == 0, off.stderr
        assert "WARNING" in off.stdout
    finally:
        node.run("enable", "rbac", timeout=240)
    node.wait_for("RBAC again",
                  lambda: "forbidden" in node.run(*as_nobody, check=False).stderr, timeout=60)
    assert "rbac" in status_addons(node)["enabled"]


def test_helm_installs_a_local_chart(node: TestNode, tmp_path: Path) -> None:
    assert "bundled" in node.run("enable", "helm").stdout
    assert "cannot be disabled" in one_line_error(node.run("disable", "helm", check=False))
    chart = tmp_path / "greeting"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: greeting\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("message: hello from helm\n")
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\n"
        "data:\n  message: {{ .Values.message | quote }}\n")
    node.run("helm", "install", "demo", str(chart), "--set", "message=hi there")
    cm = node.kubectl_json("get", "configmap", "demo-greeting")
    assert cm["data"]["message"] == "hi there"
    assert "demo" in node.run("helm", "list").stdout
    node.run("helm", "uninstall", "demo")


def test_enabling_twice_is_harmless(node: TestNode) -> None:
    before = addon_state(node)
    out = node.run("enable", "metrics-server", "dashboard").stdout.splitlines()
    assert out == ["metrics-server is already enabled", "dashboard is already enabled"]
    assert addon_state(node) == before
    line = one_line_error(node.run("enable", "dashbord", check=False))
    assert "did you mean 'dashboard'?" in line


def test_an_added_repository(node: TestNode, tmp_path: Path) -> None:
    import yaml

    repo = tmp_path / "community"
    greeter = one_addon_repository(
        repo, "greeter", repo_description="A repository of our own", description="Says hello",
        arguments=[{"name": "greeting", "type": "string", "default": "hello",
                    "positional": True, "help": "What to say"}])
    (greeter / "greeter.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: greeter, namespace: default}\n"
        "data: {greeting: {{ args.greeting | tojson }}}\n")
    (greeter / "addon.py").write_text(
        "def enable(ctx):\n    ctx.apply(ctx.manifest())\n\n\n"
        "def disable(ctx):\n    ctx.delete(ctx.made_objects())\n")
    assert "added repository community" in node.run("addons", "repo", "add", "community",
                                                    str(repo)).stdout
    node.run("enable", "community/greeter:good morning")
    cm = node.kubectl_json("get", "configmap", "greeter")
    assert cm["data"]["greeting"] == "good morning"
    st = yaml.safe_load(node.run("status", "--format", "yaml").stdout)["addons"]
    assert {"name": "greeter", "repository": "community", "status": "enabled"}.items() <= next(
        a for a in st if a["name"] == "greeter").items()
    line = one_line_error(node.run("addons", "repo", "remove", "community", check=False))
    assert "disable them first" in line
    node.run("disable", "greeter")
    assert not node.kubectl("get", "configmap", "greeter", "--ignore-not-found").strip()
    node.run("addons", "repo", "remove", "community")
    assert "community" not in node.run("addons", "repo", "list").stdout


def test_disable_removes_metrics_server_and_dashboard(node: TestNode) -> None:
    state = addon_state(node)
    objects = state["core/metrics-server"]["objects"] + state["core/dashboard"]["objects"]
    node.run("disable", "metrics-server", "dashboard")
    assert_all_gone(node, objects)
    assert "metrics-server" in status_addons(node)["disabled"]

    def metrics_api_gone() -> bool:
        top = node.run("kubectl", "top", "nodes", check=False)
        return top.returncode != 0 and "Metrics API not available" in top.stderr

    node.wait_for("kubectl top to say the Metrics API is gone", metrics_api_gone, timeout=60)
    assert addon_state(node) == {}
