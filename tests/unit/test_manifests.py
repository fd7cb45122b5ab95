"""The deploy folder's pure logic: which files are units, their keys and digests, how a
manifest parses (objects, HelmChart requests, refusals), labels, and the records."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from microkube.manifests import documents, folder, record
from microkube.manifests.deployer import chart_release, plan
from microkube.manifests.documents import ManifestError, labelled, parse, resource_arg


def _touch(d: Path, *names: str) -> None:
    for n in names:
        (d / n).write_text(f"# {n}\n")


def test_scan_reads_manifests_and_charts_with_their_values_and_ignores_the_rest(
        tmp_path: Path) -> None:
    _touch(tmp_path, "b.yaml", "a.yml", "c.json", "web.tgz", "web.values.yaml", "x.yaml.skip",
           ".hidden.yaml", "notes.txt", "edit.yaml~", "orphan.values.yaml")
    (tmp_path / "sub").mkdir()
    _touch(tmp_path / "sub", "deep.yaml")
    units = folder.scan(tmp_path)
    assert [(u.name, u.kind) for u in units] == [
        ("a.yml", "manifest"), ("b.yaml", "manifest"), ("c.json", "manifest"),
        ("orphan.values.yaml", "manifest"), ("web.tgz", "chart")]
    web = units[-1]
    assert web.values_file == tmp_path / "web.values.yaml"
    assert folder.scan(tmp_path / "missing") == []


def test_a_chart_digest_changes_with_its_values(tmp_path: Path) -> None:
    _touch(tmp_path, "web.tgz", "web.values.yaml")
    [unit] = folder.scan(tmp_path)
    before = unit.digest()
    (tmp_path / "web.values.yaml").write_text("greeting: other\n")
    assert unit.digest() != before
    assert unit.digest(b"x") != unit.digest()


@pytest.mark.parametrize(("name", "key"), [
    ("app.yaml", "app.yaml"),
    ("my app.yaml", "my-app.yaml-"),
    ("ünï.yaml", "n-.yaml-"),
    ("a" * 70 + ".yaml", "a" * 50 + "-"),
])
def test_label_keys_are_label_values(name: str, key: str) -> None:
    got = folder.label_key(name)
    assert got.startswith(key) and len(got) <= folder.LABEL_VALUE_MAX
    assert folder._LABEL_VALUE.match(got)
    assert folder.label_key(name) == got  # stable
    if got != name:
        assert folder.label_key(name + "x") != got  # distinct names, distinct keys


def test_parse_splits_objects_from_helmcharts_and_expands_lists() -> None:
    content = base64.b64encode(b"archive").decode()
    text = yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
         "metadata": {"name": "web", "namespace": "kube-system"},
         "spec": {"chartContent": content, "valuesContent": "a: 1\n", "set": {"b.c": 2}}},
        {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "metadata": {"name": "db"},
         "spec": {"chart": "charts/db.tgz", "targetNamespace": "data"}},
    ])
    parsed = parse(text, "f.yaml")
    assert [o["metadata"]["name"] for o in parsed.objects] == ["a", "d"]
    assert parsed.kinds() == {("v1", "ConfigMap"), ("apps/v1", "Deployment")}
    web, db = parsed.charts
    assert (web.release, web.namespace, web.content, web.set) == (
        "web", "kube-system", b"archive", {"b.c": 2})
    assert web.local_chart(Path("/m")) is None
    assert (db.release, db.namespace) == ("db", "data")
    assert db.local_chart(Path("/m")) == Path("/m/charts/db.tgz")


@pytest.mark.parametrize(("text", "message"), [
    ("a: [1\n", "f.yaml: not valid YAML"),
    ("- 1\n", "document 1 is not a Kubernetes object"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name are needed"),
    ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: Web}\nspec: {chart: x}\n",
     "is not a release name"),
    ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: w}\nspec: {}\n",
     "names no chart"),
    ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: w}\n"
     "spec: {chart: x, jobImage: y}\n", "does not support spec.jobImage"),
    ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: w}\n"
     "spec: {chart: x, valuesContent: 'a: [1'}\n", "valuesContent is not valid YAML"),
    ("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: w}\n"
     "spec: {chartContent: '***'}\n", "chartContent is not base64"),
])
def test_a_broken_manifest_is_refused_in_one_line_naming_the_file(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message) as e:
        parse(text, "f.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("f.yaml")


def test_labelled_marks_a_copy_and_keeps_the_objects_own_labels() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "a", "labels": {"app": "x"}}}
    out = labelled(obj, "app.yaml", "0123456789abcdef" * 4, "app.yaml")
    assert out["metadata"]["labels"] == {"app": "x", documents.MANIFEST_LABEL: "app.yaml",
                                         documents.DIGEST_LABEL: "0123456789abcdef"}
    assert out["metadata"]["annotations"] == {documents.FILE_ANNOTATION: "app.yaml"}
    assert obj["metadata"]["labels"] == {"app": "x"}


def test_resource_args_name_kinds_as_kubectl_does() -> None:
    assert resource_arg("v1", "ConfigMap") == "configmap"
    assert resource_arg("apps/v1", "Deployment") == "deployment.v1.apps"
    assert resource_arg("networking.k8s.io/v1", "Ingress") == "ingress.v1.networking.k8s.io"


def test_chart_archives_become_release_names(tmp_path: Path) -> None:
    assert chart_release(folder.Unit("My_Web.tgz", "chart", (tmp_path / "x",))) == "my-web"
    with pytest.raises(ManifestError, match="no release name"):
        chart_release(folder.Unit("__.tgz", "chart", (tmp_path / "x",)))


def test_a_helmchart_digest_covers_its_local_chart(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "web.tgz").write_bytes(b"v1")
    (tmp_path / "web.yaml").write_text(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: web}\n"
        "spec: {chart: charts/web.tgz}\n")
    [unit] = folder.scan(tmp_path)
    before = plan(unit, tmp_path).digest
    (tmp_path / "charts" / "web.tgz").write_bytes(b"v2")
    assert plan(unit, tmp_path).digest != before
    (tmp_path / "charts" / "web.tgz").unlink()
    with pytest.raises(ManifestError, match="cannot read its chart"):
        plan(unit, tmp_path)


def test_state_and_report_survive_a_round_trip_and_unreadable_files_count_as_empty(
        tmp_path: Path) -> None:
    state = {"a.yaml": record.UnitState("d1", {("v1", "ConfigMap"), ("apps/v1", "Deployment")})}
    record.save_state(tmp_path / "s.json", state)
    assert record.load_state(tmp_path / "s.json") == state
    report = record.Report("/m", {"a.yaml": record.Outcome(record.FAILED, "a.yaml: bad", 1.5)})
    record.save_report(tmp_path / "r.json", report)
    assert record.load_report(tmp_path / "r.json") == report
    (tmp_path / "s.json").write_text("{not json")
    assert record.load_state(tmp_path / "s.json") == {}
    assert record.load_report(tmp_path / "missing.json") is None
