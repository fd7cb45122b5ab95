"""The deploy folder on a real node: manifests applied, changed, broken, fixed and removed,
and Helm charts (an archive with a values file, and a HelmChart manifest) installed,
upgraded and uninstalled, each step in the cluster within STEP seconds of the file change.

The tests share one node and run in file order. The chart is made here; nothing is fetched.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from microkube.paths import Paths
from tests.testnode import TestNode, wait_for

pytestmark = pytest.mark.e2e

STEP = 5.0  # seconds from a file change until the cluster shows it (the bound)
LABEL = "microkube.io/manifest"


def _paths(node: TestNode) -> Paths:
    return Paths.from_env(node.env)


def _within(node: TestNode, what: str, check: Callable[[], Any], since: float) -> Any:
    """``check`` true within STEP s of ``since`` (a time.monotonic()); AssertionError with the
    deployer's last log lines if not."""
    left = since + STEP - time.monotonic()
    try:
        return wait_for(what, check, timeout=max(left, 0.1), every=0.1)
    except AssertionError as e:
        log = _paths(node).log_file("manifests")
        tail = log.read_text().splitlines()[-15:] if log.exists() else ["(no log)"]
        raise AssertionError(f"{e}\nthe deployer's log ends:\n" + "\n".join(tail)) from None


def _write(path: Path, text: str | bytes) -> float:
    """Write a file as a user would (in place) and return when the write finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return time.monotonic()


def _configmaps(node: TestNode, namespace: str = "default") -> dict[str, dict[str, Any]]:
    """The ConfigMaps of ``namespace`` by name (the API's objects)."""
    doc = node.kubectl_json("get", "configmaps", "-n", namespace)
    return {i["metadata"]["name"]: i for i in doc["items"]}


def _data(node: TestNode, name: str, namespace: str = "default") -> dict[str, str] | None:
    cm = _configmaps(node, namespace).get(name)
    return None if cm is None else dict(cm.get("data") or {})


def _configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _manifest(*objects: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def _status_files(node: TestNode) -> dict[str, dict[str, str]]:
    doc = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    return {f["file"]: f for f in doc["manifests"]["files"]}


# --- plain manifests ------------------------------------------------------------------


def test_the_folder_is_in_status(node: TestNode) -> None:
    doc = yaml.safe_load(node.run("status", "--format", "yaml").stdout)
    assert doc["manifests"]["folder"] == str(_paths(node).manifests_dir)
    assert _paths(node).manifests_dir.is_dir()
    assert doc["manifests"]["ready"] is True
    assert "manifests" not in doc["daemons"]  # a thread of the cluster agent, not a daemon


def test_a_file_added_is_applied_with_labels_microkube_owns(node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    t = _write(folder / "app.yaml", _manifest(_configmap("mk-a", v="1"), _configmap("mk-b", v="b")))
    _within(node, "mk-a and mk-b", lambda: {"mk-a", "mk-b"} <= set(_configmaps(node)), t)
    cm = _configmaps(node)["mk-a"]
    assert cm["data"] == {"v": "1"}
    assert cm["metadata"]["labels"][LABEL] == "app.yaml"
    assert cm["metadata"]["annotations"]["microkube.io/manifest-file"] == "app.yaml"
    full = node.kubectl_json("get", "configmap", "mk-a", "--show-managed-fields")
    managers = {m["manager"] for m in full["metadata"]["managedFields"]}
    assert "microkube-manifests" in managers


def test_a_changed_file_updates_and_prunes_what_it_no_longer_holds(node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "mk-sa"}}
    t = _write(folder / "app.yaml", _manifest(_configmap("mk-a", v="2"), _configmap("mk-c"), sa))

    def changed() -> bool:
        cms = _configmaps(node)
        return cms.get("mk-a", {}).get("data") == {"v": "2"} and "mk-b" not in cms and "mk-c" in cms

    _within(node, "mk-a changed, mk-b pruned, mk-c added", changed, t)
    node.kubectl("get", "serviceaccount", "mk-sa")


def test_a_broken_file_is_reported_and_the_others_still_apply(node: TestNode) -> None:
    paths = _paths(node)
    folder = paths.manifests_dir
    t = _write(folder / "app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [oops\n")
    _write(folder / "other.yaml", _manifest(_configmap("mk-other", v="o")))
    _within(node, "mk-other applied beside the broken file", lambda: "mk-other" in _configmaps(node), t)
    entry = _within(node, "app.yaml reported failed in status",
                    lambda: (_status_files(node).get("app.yaml") or {}).get("state") == "failed"
                    and _status_files(node)["app.yaml"], t)
    assert "app.yaml: not valid YAML" in entry["message"], entry
    assert "app.yaml" in node.run("status").stdout  # the pretty format names it too
    # Nothing it made was touched.
    assert _data(node, "mk-a") == {"v": "2"}
    events = node.kubectl_json("get", "events", "-n", "default",
                               "--field-selector", "reason=ManifestFailed")["items"]
    assert any("app.yaml: not valid YAML" in e["message"] and e["type"] == "Warning"
               and e["involvedObject"]["kind"] == "Node" for e in events), events
    assert "app.yaml: not valid YAML" in paths.log_file("manifests").read_text()


def test_a_fixed_file_applies_again(node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "mk-sa"}}
    t = _write(folder / "app.yaml", _manifest(_configmap("mk-a", v="3"), _configmap("mk-c"), sa))
    _within(node, "mk-a at v=3", lambda: _data(node, "mk-a") == {"v": "3"}, t)
    _within(node, "app.yaml reported applied",
            lambda: _status_files(node)["app.yaml"]["state"] == "applied", t)


def test_a_removed_file_deletes_what_it_made_and_nothing_else(node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    (folder / "app.yaml").unlink()
    t = time.monotonic()

    def gone() -> bool:
        cms = _configmaps(node)
        sas = node.kubectl("get", "serviceaccounts", "-o", "name")
        return not {"mk-a", "mk-c"} & set(cms) and "serviceaccount/mk-sa" not in sas

    _within(node, "mk-a, mk-c and mk-sa deleted", gone, t)
    assert "mk-other" in _configmaps(node)
    assert "app.yaml" not in _status_files(node)


# --- Helm charts -------------------------------------------------------------------------


def _chart_archive(name: str = "hello") -> bytes:
    """A chart packaged as helm packages one: ``<name>/`` with Chart.yaml, values and a
    template making ConfigMap ``<release>-cm`` with the value ``greeting``."""
    files = {
        "Chart.yaml": yaml.safe_dump({"apiVersion": "v2", "name": name, "version": "0.1.0"}),
        "values.yaml": "greeting: default\n",
        "templates/cm.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                              "  name: {{ .Release.Name }}-cm\n"
                              "data:\n  greeting: {{ .Values.greeting | quote }}\n"),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _releases(node: TestNode) -> set[tuple[str, str]]:
    out = node.run("helm", "list", "--all-namespaces", "--output", "json").stdout
    return {(r["name"], r["namespace"]) for r in json.loads(out or "[]")}


def _greeting(node: TestNode, name: str, namespace: str = "default") -> str | None:
    return (_data(node, name, namespace) or {}).get("greeting")


def test_a_chart_archive_with_values_is_installed_upgraded_and_uninstalled(
        node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    _write(folder / "hello.values.yaml", "greeting: one\n")
    t = _write(folder / "hello.tgz", _chart_archive())
    _within(node, "the chart installed", lambda: _greeting(node, "hello-cm") == "one", t)
    assert ("hello", "default") in _releases(node)
    t = _write(folder / "hello.values.yaml", "greeting: two\n")
    _within(node, "the chart upgraded with the new values", lambda: _greeting(node, "hello-cm") == "two", t)
    (folder / "hello.tgz").unlink()
    (folder / "hello.values.yaml").unlink()
    t = time.monotonic()
    _within(node, "the chart uninstalled", lambda: "hello-cm" not in _configmaps(node), t)
    assert ("hello", "default") not in _releases(node)


def test_a_helmchart_manifest_is_installed_upgraded_and_uninstalled(node: TestNode) -> None:
    folder = _paths(node).manifests_dir
    # In a subfolder: the deployer reads the folder's own files only, so this archive is
    # the HelmChart's chart, not a chart of its own.
    _write(folder / "charts" / "hello-0.1.0.tgz", _chart_archive())

    def helmchart(greeting: str) -> str:
        return _manifest({"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
                          "metadata": {"name": "web", "namespace": "kube-system"},
                          "spec": {"chart": "charts/hello-0.1.0.tgz", "targetNamespace": "web-ns",
                                   "valuesContent": f"greeting: {greeting}\n"}})

    t = _write(folder / "web.yaml", helmchart("alpha"))
    _within(node, "the HelmChart installed", lambda: _greeting(node, "web-cm", "web-ns") == "alpha", t)
    assert ("web", "web-ns") in _releases(node)
    t = _write(folder / "web.yaml", helmchart("beta"))
    _within(node, "the HelmChart upgraded", lambda: _greeting(node, "web-cm", "web-ns") == "beta", t)
    (folder / "web.yaml").unlink()
    t = time.monotonic()
    _within(node, "the HelmChart uninstalled", lambda: "web-cm" not in _configmaps(node, "web-ns"), t)
    assert ("web", "web-ns") not in _releases(node)
