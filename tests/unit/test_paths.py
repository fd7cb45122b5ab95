"""Paths: every location, port, cache root and PKI file name from one place."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from microkube.config.render import render
from microkube.paths import CHECKOUT, KUBECONFIGS, Paths, Ports, absolute_environment, cache_root


def test_cache_root_honours_the_cache_variables(tmp_path: Path) -> None:
    home = Path.home()
    assert cache_root({}) == home / ".cache" / "microkube"
    assert cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/microkube")
    assert cache_root({"XDG_CACHE_HOME": "/x", "MICROKUBE_CACHE": "/m"}) == Path("/m")


def test_every_cache_lives_under_the_one_root() -> None:
    paths = Paths.from_env({"MICROKUBE_ROOT": "/r", "XDG_CACHE_HOME": "/x"})
    assert paths.cache == Path("/x/microkube")
    caches = [paths.components_cache, paths.go_work_dir, paths.go_build_lock,
              paths.addon_binaries_cache, paths.images_cache, paths.craft_parts_cache]
    assert all(c.parent == paths.cache for c in caches)
    assert len(set(caches)) == len(caches)
    snap = Paths.from_env({"SNAP": "/s", "SNAP_DATA": "/d", "SNAP_COMMON": "/c",
                           "MICROKUBE_CACHE": "/m"})
    assert snap.in_snap and snap.images_cache == Path("/m/images")


def test_relative_trees_are_made_absolute_for_daemons_that_run_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = Paths.from_env({"MICROKUBE_ROOT": "node", "MICROKUBE_SNAP": "tree",
                            "MICROKUBE_CACHE": "c"})
    assert paths.data == tmp_path / "node" / "data" and paths.snap == tmp_path / "tree"
    assert paths.cache == tmp_path / "c"
    env = absolute_environment({"MICROKUBE_ROOT": "node", "MICROKUBE_SNAP": "/abs", "PATH": "p"})
    assert env == {"MICROKUBE_ROOT": str(tmp_path / "node"), "MICROKUBE_SNAP": "/abs",
                   "PATH": "p"}


def test_image_and_component_caches_follow_the_variable(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from microkube.components.build import Builder
    from microkube.components.manifest import load
    from microkube.images import gobuild
    from microkube.images.build import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MICROKUBE_CACHE", raising=False)
    assert default_cache_dir() == tmp_path / "microkube" / "images"
    assert Builder(load()).cache.dir == tmp_path / "microkube" / "components"
    if shutil.which("go"):
        binary = gobuild.GoBinary(name="app", package=".",
                                  source_dir=CHECKOUT / "components" / "dashboard")
        assert gobuild.cached_binary(binary).is_relative_to(
            tmp_path / "microkube" / "addon-binaries")


def test_cni_folders() -> None:
    paths = Paths(Path("/s"), Path("/d"), Path("/c"))
    assert paths.cni_bin_dir == Path("/s/opt/cni/bin")
    assert paths.cni_conf_dir == Path("/d/args/cni-network")
    assert paths.cni_state_dir == Path("/c/var/lib/cni")


def test_pki_file_names() -> None:
    paths = Paths(Path("/s"), Path("/d"), Path("/c"))
    assert paths.pki.ca.cert == Path("/d/certs/ca.crt")
    assert paths.pki.ca.key == Path("/d/certs/ca.key")
    assert paths.pki.etcd_ca.cert == Path("/d/certs/etcd/ca.crt")
    assert paths.kubeconfig("admin") == Path("/d/credentials/admin.config")
    assert set(paths.pki.kubeconfigs) == set(KUBECONFIGS)
    with pytest.raises(KeyError):
        paths.kubeconfig("nobody")


def test_ports_are_microk8s_defaults_and_feed_argument_files() -> None:
    ports = Paths(Path("/s"), Path("/d"), Path("/c")).ports
    assert (ports.api_server, ports.datastore_client, ports.datastore_peer, ports.cluster_agent,
            ports.kubelet) == (16443, 12379, 12380, 25000, 10250)
    values = ports.substitutions()
    assert values["DATASTORE_PEER_PORT"] == "12380"
    assert "API_SERVER_PORT" not in values  # ${API_PORT} is the node's own setting
    assert len(set(Ports()._asdict().values())) == len(Ports()._fields)  # no two share a port


def test_config_files_take_locations_and_ports_from_paths(tmp_path: Path) -> None:
    import yaml

    from microkube.config.node import NodeConfig
    from microkube.config.render import ensure_configs

    paths = Paths(tmp_path / "s", tmp_path / "d", tmp_path / "c")
    ensure_configs(paths, NodeConfig("n1", "10.0.0.5"))
    kubelet = yaml.safe_load((paths.args_dir / "kubelet.yaml").read_text())
    assert kubelet["authentication"]["x509"]["clientCAFile"] == str(paths.pki.ca.cert)
    assert (kubelet["tlsCertFile"], kubelet["tlsPrivateKeyFile"]) == (
        str(paths.pki.kubelet.cert), str(paths.pki.kubelet.key))
    assert (kubelet["port"], kubelet["healthzPort"]) == (paths.ports.kubelet,
                                                          paths.ports.kubelet_healthz)
    conflist = (paths.cni_conf_dir / "10-flannel.conflist").read_text()
    assert f'"{paths.cni_state_dir}/networks"' in conflist
    assert render("10-flannel.conflist.j2", paths=paths) == conflist


# What only paths.py may spell out: ports, and file names under the trees.
PORTS = {16443, 12379, 12380, 12381, 10248, 10249, 10250, 10256, 10257, 10258, 10259, 25000}
PATH_PARTS = ("cni", ".cache", "ca.crt", "ca.key", "opt/cni", "var/lib/cni", ".config")


def _literals(node: ast.AST) -> list[tuple[int, str]]:
    """Ports (ints or inside strings) and path parts joined with '/' or written as paths."""
    found = []
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and n.value in PORTS:
            found.append((n.lineno, str(n.value)))
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            if any(str(p) in n.value for p in PORTS) or any(
                    f"/{part}" in n.value for part in PATH_PARTS if "/" in part):
                found.append((n.lineno, n.value))
        elif (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
              and isinstance(n.right, ast.Constant) and n.right.value in PATH_PARTS):
            found.append((n.lineno, f"/ {n.right.value!r}"))
    return found


def test_no_module_rebuilds_what_paths_knows() -> None:
    offenders = [f"{f.relative_to(CHECKOUT)}:{line}: {text}"
                 for f in sorted((CHECKOUT / "microkube").rglob("*.py")) if f.name != "paths.py"
                 for line, text in _literals(ast.parse(f.read_text()))]
    assert offenders == []
