"""The snap's definition and the pure logic around it: no snap, no root, seconds."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from microkube.cli import PASSTHROUGH
from microkube.components.manifest import load as load_manifest
from microkube.config import render
from microkube.config.node import NodeConfig
from microkube.errors import UsageError
from microkube.images.addon_recipes import addon_recipes
from microkube.paths import CHECKOUT, Paths
from microkube.services import cgroups
from microkube.services.registry import all_daemons
from microkube.snap import hooks, leftovers, options, parts, project, revision, snapyaml, tree

SNAPCRAFT = yaml.safe_load((CHECKOUT / "snapcraft.yaml").read_text())


@pytest.fixture(scope="module")
def proj() -> project.Project:
    return project.load()


# --- snapcraft.yaml ------------------------------------------------------------------


def test_metadata_follows_the_issue(proj: project.Project) -> None:
    assert (proj.name, proj.base, proj.confinement) == ("microkube", "core24", "classic")
    assert proj.grade in ("devel", "stable")
    # The version is adopted from the microkube part, which reads pyproject.toml.
    assert proj.version is None and proj.adopt_info == "microkube"
    assert "craftctl set version=" in proj.parts["microkube"]["override-build"]
    assert "pyproject.toml" in proj.parts["microkube"]["override-build"]


def test_one_daemon_app_per_node_daemon(proj: project.Project) -> None:
    daemons = {d.name: d for d in all_daemons()}
    apps = proj.daemon_apps()
    assert set(apps) == {f"daemon-{n}" for n in daemons}
    for name, d in daemons.items():
        app = apps[f"daemon-{name}"]
        # Exactly what microkube.services.snapctl asks snapd to start.
        assert shlex.split(app["command"]) == ["bin/microkube-daemon", name]
        assert shlex.split(app["post-stop-command"]) == ["bin/microkube-daemon", name, "--cleanup"]
        assert app["daemon"] == "simple"
        assert app["restart-condition"] == "always"
        assert set(app.get("after", [])) == {f"daemon-{dep}" for dep in d.after}


def test_certificates_renew_on_a_timer_in_the_snap(proj: project.Project) -> None:
    # snapd runs no supervisor of ours: a timer app renews what is due, four times a day.
    timers = proj.timer_apps()
    assert set(timers) == {"renew-certs"}
    app = timers["renew-certs"]
    assert shlex.split(app["command"]) == ["bin/microkube", "refresh-certs", "--due"]
    assert app["daemon"] == "oneshot" and app["timer"] == "00:00-24:00/4"
    assert "renew-certs" not in proj.daemon_apps()


def test_tools_are_reachable_through_microkube(proj: project.Project) -> None:
    assert proj.apps["microkube"]["command"] == "bin/microkube"
    for tool in PASSTHROUGH:
        assert shlex.split(proj.apps[tool]["command"]) == ["bin/microkube", tool]


def test_launchers_and_hooks_exist_and_are_executable(proj: project.Project) -> None:
    build = proj.parts["microkube"]["override-build"]
    for app in proj.apps.values():
        launcher = shlex.split(app["command"])[0].removeprefix("bin/")
        assert f"snap/local/{launcher}" in build
        assert os.access(CHECKOUT / "snap" / "local" / launcher, os.X_OK)
    for hook in tree.HOOKS:
        path = CHECKOUT / "snap" / "hooks" / hook
        assert os.access(path, os.X_OK), path
        assert f"microkube-hook\" {hook}" in path.read_text()
    assert set(hooks.HOOKS) == set(tree.HOOKS)


def test_components_part_builds_from_the_manifest_without_repeating_versions(
        proj: project.Project) -> None:
    build = proj.parts["components"]["override-build"]
    assert "-m microkube.components build" in build
    assert "prune-image-inputs" in build
    text = (CHECKOUT / "snapcraft.yaml").read_text()
    for comp in load_manifest().components:
        assert comp.version not in text, f"{comp.name}'s version is written in snapcraft.yaml"


def test_every_part_the_issue_names_is_there(proj: project.Project) -> None:
    assert proj.parts["microkube"]["plugin"] == "python"
    assert proj.parts["addons"]["source"].rstrip("/") == "addons"
    assert {"python-runtime", "microkube", "components", "addons"} <= set(proj.parts)


# --- meta/snap.yaml ---------------------------------------------------------------------


def test_snap_yaml_carries_metadata_and_apps(proj: project.Project) -> None:
    doc = yaml.safe_load(snapyaml.render(proj, "1.2.3", "amd64"))
    assert doc["name"] == "microkube" and doc["version"] == "1.2.3"
    assert doc["architectures"] == ["amd64"]
    assert (doc["base"], doc["confinement"], doc["grade"]) == ("core24", "classic", proj.grade)
    assert doc["apps"] == SNAPCRAFT["apps"]
    assert doc["description"] == SNAPCRAFT["description"]
    # snapcraft-only keys never reach snap.yaml
    assert not {"parts", "adopt-info", "platforms"} & set(doc)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("name"), "'name' is missing"),
    (lambda d: d.pop("adopt-info"), "neither 'version' nor 'adopt-info'"),
    (lambda d: d["apps"]["microkube"].update({"comand": "x"}), "unknown key 'comand'"),
    (lambda d: d["apps"]["daemon-etcd"].update({"after": ["kubectl"]}), "not a daemon app"),
    (lambda d: d["apps"].update({"broken": {"daemon": "simple"}}), "has no command"),
])
def test_a_broken_snapcraft_yaml_is_refused_with_one_line(change: object, message: str) -> None:
    doc = yaml.safe_load((CHECKOUT / "snapcraft.yaml").read_text())
    change(doc)  # type: ignore[operator]
    with pytest.raises(UsageError, match=message):
        project.parse(doc)


# --- the tree --------------------------------------------------------------------------


def test_image_only_binaries_are_addon_images_and_components() -> None:
    images = {r.name for r in addon_recipes(Path("/nonexistent"))}
    comps = {c.name for c in load_manifest().components}
    assert set(tree.IMAGE_ONLY) <= images & comps


def test_prune_drops_image_only_binaries_and_their_records(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    for name in ("coredns", "kube", "registry"):
        (tmp_path / "bin" / name).write_text("x")
    record = {"version": 1, "components": {"coredns": {}, "kubernetes": {}, "registry": {}}}
    (tmp_path / "versions.json").write_text(json.dumps(record))
    assert sorted(tree.prune_image_inputs(tmp_path)) == ["bin/coredns", "bin/registry"]
    assert [p.name for p in (tmp_path / "bin").iterdir()] == ["kube"]
    assert list(json.loads((tmp_path / "versions.json").read_text())["components"]) == ["kubernetes"]


def test_required_paths_cover_daemons_tools_images_and_hooks() -> None:
    need = set(tree.required_paths())
    for d in all_daemons():
        assert f"bin/{d.binary}" in need
    assert {"bin/ctr", "bin/helm", "bin/kubectl", "opt/cni/bin/bridge", "opt/cni/bin/flannel",
            "images/pause.tar", "images/addons/coredns.tar", "addons/addons.yaml",
            "meta/hooks/install", "bin/python3", "bin/ipset", "usr/sbin/ipset"} <= need
    assert not any(p == f"bin/{n}" for n in tree.IMAGE_ONLY for p in need)


def test_local_parts_swap_only_what_needs_an_ubuntu_host(proj: project.Project) -> None:
    local = parts.local_parts(proj.parts)
    _, _, name = parts.host_python()
    runtime = local["python-runtime"]
    assert "stage-packages" not in runtime
    assert "stage-host-python" in runtime["override-build"]
    assert f"-usr/lib/{name}/ensurepip" in runtime["prime"]
    assert all("build-snaps" not in p and "build-packages" not in p for p in local.values())
    # The other parts run as snapcraft runs them.
    for part in ("microkube", "components", "addons"):
        assert local[part]["override-build"] == proj.parts[part]["override-build"]


# --- hooks' logic --------------------------------------------------------------------------


NODE = NodeConfig(node_name="n1", node_ip="10.0.0.5")


def test_node_options_map_to_node_settings() -> None:
    got = options.node_settings({"ip": "10.0.0.9", "pod-cidr": "10.50.0.0/16", "name": "edge-1"})
    assert got == {"node_ip": "10.0.0.9", "pod_cidr": "10.50.0.0/16", "node_name": "edge-1"}
    assert options.environment(got)["MICROKUBE_NODE_IP"] == "10.0.0.9"
    with pytest.raises(UsageError, match=r"unknown option node\.podcidr"):
        options.node_settings({"podcidr": "10.0.0.0/8"})
    with pytest.raises(UsageError, match="non-empty string"):
        options.node_settings({"ip": ""})


def test_node_options_apply_only_before_the_first_start() -> None:
    assert options.changed(NODE, {"node_ip": "10.0.0.5"}, started=True) is None
    new = options.changed(NODE, {"node_ip": "10.0.0.6"}, started=False)
    assert new is not None and new.node_ip == "10.0.0.6"
    with pytest.raises(UsageError, match=r"node\.ip cannot change once the node has started "
                                         r"\(it is 10\.0\.0\.5\)"):
        options.changed(NODE, {"node_ip": "10.0.0.6"}, started=True)
    with pytest.raises(UsageError, match="not an IP address"):
        options.changed(NODE, {"node_ip": "ten"}, started=False)


def test_rendered_configs_are_exactly_what_render_writes(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "snap", tmp_path / "data", tmp_path / "common")
    paths.ensure()
    node = NodeConfig(node_name="n1", node_ip="10.0.0.5", registry_mirror="http://127.0.0.1:5999")
    render.ensure_configs(paths, node)
    written = {p for p in paths.data.rglob("*") if p.is_file()}
    assert written == set(hooks.rendered_configs(paths))


def _paths(root: Path, rev: str) -> Paths:
    return Paths(root / "snap" / "microkube" / rev, root / "var" / "snap" / "microkube" / rev,
                 root / "var" / "snap" / "microkube" / "common", in_snap=True)


def test_revision_paths_are_repointed(tmp_path: Path) -> None:
    new = _paths(Path("/"), "x12")
    text = ('BinaryName = "/snap/microkube/x1/bin/runc"\n'
            "ca: /var/snap/microkube/11/certs/ca.crt\n"
            "keep: /var/snap/microkube/common/run /snap/microkube/current/bin /snap/microkube/x12/bin\n"
            "other: /snap/microkubex/x1/bin\n")
    assert revision.repoint_text(text, new) == (
        'BinaryName = "/snap/microkube/x12/bin/runc"\n'
        "ca: /var/snap/microkube/x12/certs/ca.crt\n"
        "keep: /var/snap/microkube/common/run /snap/microkube/current/bin /snap/microkube/x12/bin\n"
        "other: /snap/microkubex/x1/bin\n")
    # x1 is not a prefix match of x12, nor x12 of x1
    assert revision.repoint_text("/snap/microkube/x1", _paths(Path("/"), "x12")) == "/snap/microkube/x12"
    assert revision.repoint_text("/snap/microkube/x12", _paths(Path("/"), "x1")) == "/snap/microkube/x1"


def test_repoint_tree_keeps_certificates_and_the_datastore(tmp_path: Path) -> None:
    old, new = _paths(tmp_path, "x1"), _paths(tmp_path, "x2")
    for d in (new.args_dir, new.certs_dir, new.datastore_dir):
        d.mkdir(parents=True)
    (new.args_dir / "containerd.toml").write_text(f"runc = '{old.snap}/bin/runc'\n")
    os.chmod(new.args_dir / "containerd.toml", 0o640)
    (new.certs_dir / "note").write_text(f"{old.data}/certs\n")
    (new.datastore_dir / "db").write_text(f"{old.data}\n")
    changed = revision.repoint_tree(new)
    assert changed == [new.args_dir / "containerd.toml"]
    assert (new.args_dir / "containerd.toml").read_text() == f"runc = '{new.snap}/bin/runc'\n"
    assert (new.args_dir / "containerd.toml").stat().st_mode & 0o777 == 0o640
    assert (new.certs_dir / "note").read_text() == f"{old.data}/certs\n"
    assert (new.datastore_dir / "db").read_text() == f"{old.data}\n"


DUMP = """# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:FLANNEL-POSTRTG - [0:0]
:CNI-HOSTPORT-DNAT - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE
-A FLANNEL-POSTRTG -s 10.1.0.0/16 -j RETURN
-A DOCKER -i docker0 -j RETURN
COMMIT
"""


def test_only_our_chains_and_the_rules_jumping_to_them_are_dropped() -> None:
    cleaned = leftovers.without_chains(DUMP)
    assert cleaned is not None
    assert "FLANNEL" not in cleaned and "CNI-" not in cleaned
    for kept in (":DOCKER - [0:0]", "-j DOCKER", "-s 172.17.0.0/16 -j MASQUERADE",
                 "-A DOCKER -i docker0 -j RETURN", "*nat", "COMMIT"):
        assert kept in cleaned
    assert leftovers.without_chains("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") is None


def test_pods_are_found_in_every_cgroup_hierarchy(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    for controller, pids in (("pids", "11\n12\n"), ("memory", "12\n13\n")):
        pod = v1 / controller / "microkube-test" / "n1" / "kubepods" / "pod1"
        pod.mkdir(parents=True)
        (pod / "cgroup.procs").write_text(pids)
    (v1 / "pids" / "cgroup.procs").write_text("1\n")  # the host's: not ours
    assert cgroups.cgroup_pids("/microkube-test/n1", v1) == {11, 12, 13}
    v2 = tmp_path / "v2"
    (v2 / "kubepods" / "pod1").mkdir(parents=True)
    (v2 / "cgroup.controllers").write_text("cpu memory pids\n")
    (v2 / "kubepods" / "cgroup.procs").write_text("")
    (v2 / "kubepods" / "pod1" / "cgroup.procs").write_text("21\n")
    assert cgroups.cgroup_pids("/kubepods", v2) == {21}
    assert cgroups.cgroup_pids("/nothing", v2) == set()


@pytest.mark.parametrize("launcher", ["microkube", "microkube-daemon", "microkube-hook"])
def test_launchers_find_the_interpreter_beside_them(tmp_path: Path, launcher: str) -> None:
    """Run directly, by a relative path and through a symlink elsewhere, a launcher execs the
    python3 in its own folder (a stand-in here that prints its arguments)."""
    bin_dir = tmp_path / "snap" / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy(CHECKOUT / "snap" / "local" / launcher, bin_dir / launcher)
    fake = bin_dir / "python3"
    fake.write_text('#!/bin/sh\necho "$0" "$@"\n')
    fake.chmod(0o755)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / launcher).symlink_to(bin_dir / launcher)
    for argv, cwd in (([str(bin_dir / launcher)], tmp_path),
                      ([f"snap/bin/{launcher}"], tmp_path),
                      ([str(tmp_path / "elsewhere" / launcher)], tmp_path / "elsewhere")):
        out = subprocess.run([*argv, "a b", "c"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.split()
        assert Path(cwd, out[0]).resolve() == fake
        assert out[1] == "-P" and out[-3:] == ["a", "b", "c"]
