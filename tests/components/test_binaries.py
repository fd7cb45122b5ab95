"""The built component binaries report exactly the versions the manifest pins.

Needs `make components` (build/snap, or MICROKUBE_SNAP); skipped when nothing is built,
failed when the built tree lacks a binary (a build regression).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from microkube.components import manifest
from microkube.components.versions import Probe, parse_version, probe
from microkube.gotoolchain import toolchain
from microkube.paths import Paths
from tests import testnode

pytestmark = pytest.mark.components

MANIFEST = manifest.load()
PATHS = Paths.from_env()


def dest_dir(comp: manifest.Component) -> Path:
    return PATHS.cni_bin_dir if comp.dest == "cni" else PATHS.bin_dir


def require_built(path: Path) -> None:
    testnode.require_built(path, tree=PATHS.snap)


@pytest.mark.parametrize("comp", MANIFEST.components, ids=MANIFEST.names())
def test_component_reports_pinned_version(comp: manifest.Component) -> None:
    cmd = comp.version_command
    binary = dest_dir(comp) / cmd[0]
    require_built(binary)
    result = probe(Probe(comp.name, comp.version, (str(binary), *cmd[1:])))
    assert result.reported == comp.version, result.describe()


def all_binaries() -> list[tuple[manifest.Component, str]]:
    return [(c, name) for c in MANIFEST.components
            for name in [b.name for b in c.binaries] + [link for link, _ in c.links]]


@pytest.mark.parametrize(("comp", "name"), all_binaries(),
                         ids=[n for _, n in all_binaries()])
def test_every_binary_is_installed_and_stamped(comp: manifest.Component, name: str) -> None:
    """Not only the one binary `microkube version` asks: every one carries the pin."""
    path = dest_dir(comp) / name
    require_built(path)
    # The binary `microkube version` asks answers its version_command; the others
    # say their version in their own way.
    argv = {
        comp.version_command[0]: list(comp.version_command[1:]),
        "kube": ["kubelet", "--version"],
        "kubectl": ["version", "--client"],
        "ctr": ["--version"],
        "containerd-shim-runc-v2": ["-v"],
    }.get(name)
    if argv is None:  # a CNI plugin (no arguments) or a Kubernetes component
        argv = [] if comp.dest == "cni" else ["--version"]
    argv = [str(path), *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL, check=False)
    assert parse_version(out.stdout + out.stderr) == comp.version, out.stdout + out.stderr


def test_etcd_takes_the_usual_etcd_flags() -> None:
    etcd = PATHS.bin_dir / "etcd"
    require_built(etcd)
    out = subprocess.run([str(etcd), "--help"], capture_output=True, text=True, timeout=30,
                         check=False)
    for flag in ("--initial-cluster", "--data-dir", "--listen-client-urls"):
        assert flag in out.stdout + out.stderr


def _kubelite(tmp_path: Path, parts: dict[str, list[str]]) -> tuple[subprocess.CompletedProcess[str], Path]:
    kube = PATHS.bin_dir / "kube"
    require_built(kube)
    failed = tmp_path / "kubelite.failed"
    spec = tmp_path / "kubelite.json"
    spec.write_text(json.dumps({"parts": parts, "ready_kubeconfig": str(tmp_path / "none"),
                                "failed_file": str(failed)}))
    out = subprocess.run([str(kube), "kubelite", str(spec)], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL, check=False)
    return out, failed


def test_kubelite_names_the_part_that_ended_it(tmp_path: Path) -> None:
    out, failed = _kubelite(tmp_path, {"kube-scheduler": ["--no-such-flag=1"]})
    assert out.returncode == 1, out.stderr
    name, reason = failed.read_text().split("\n", 1)
    assert name == "kube-scheduler"
    assert "no-such-flag" in reason


def test_kubelite_refuses_an_unknown_part(tmp_path: Path) -> None:
    out, failed = _kubelite(tmp_path, {"kube-nothing": []})
    assert out.returncode == 2
    assert 'unknown part "kube-nothing"' in out.stderr
    assert not failed.exists()


# Wrappers that stand in for an upstream main (which Go cannot import): module-relative
# path of that main.go. Our copy must keep doing everything it does.
UPSTREAM_MAINS = {"containerd": "cmd/containerd/main.go", "kine": "main.go"}


def _func_main_body(source: str) -> list[str]:
    """The stripped, non-blank lines of ``func main() { ... }`` in a Go file."""
    body = source.split("\nfunc main() {\n", 1)[1].split("\n}\n", 1)[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(UPSTREAM_MAINS))
def test_wrapper_runs_what_upstreams_main_runs(name: str, tmp_path: Path) -> None:
    """The containerd and kine wrappers copy upstream's main (plus the page release): on a
    version bump, the pinned module's main.go must still be contained in ours, import by
    import and line by line, or the copy has drifted from upstream."""
    comp = MANIFEST.get(name)
    go = toolchain()
    info = json.loads(go.run(["mod", "download", "-json", f"{comp.module}@{comp.version}"],
                             tmp_path, tmp_path / "go.log", capture=True))
    upstream = (Path(info["Dir"]) / UPSTREAM_MAINS[name]).read_text()
    ours = (manifest.COMPONENTS_DIR / str(comp.wrapper) / "main.go").read_text()
    imports = set(re.findall(r'^\s*(?:_ )?("[^"]+")$', upstream, re.M))
    assert imports and imports <= set(re.findall(r'^\s*(?:_ )?("[^"]+")$', ours, re.M))
    missing = [line for line in _func_main_body(upstream) if line not in _func_main_body(ours)]
    assert not missing, f"{UPSTREAM_MAINS[name]} of {comp.module}@{comp.version} does more: {missing}"
