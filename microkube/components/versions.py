"""What the built binaries say their version is.

`microkube version` and the component tests ask each binary itself
(``kubelet --version``, ``runc --version``, a CNI plugin with no arguments,
...) rather than echoing the manifest, so a binary that lost its version stamp
shows up as v0.0.0 instead of hiding behind the pin. The probes run in
parallel threads: most of the time is process start-up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from microkube.paths import Paths

_VERSION_RE = re.compile(r"(?<![\w.])v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)")
PROBE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Probe:
    """How to ask one component's binary for its version."""

    component: str
    pinned: str
    argv: tuple[str, ...]  # argv[0] is the absolute path of the binary


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    reported: str | None  # "v1.2.3" as the binary printed it, or None
    problem: str = ""  # "not built", or why no version could be read

    @property
    def matches(self) -> bool:
        return self.reported == self.probe.pinned

    def describe(self) -> str:
        """The value column of `microkube version`."""
        if self.reported is None:
            return self.problem
        if not self.matches:
            return f"{self.reported} (pinned {self.probe.pinned})"
        return self.reported


def parse_version(text: str) -> str | None:
    """The first x.y.z version in a binary's output, as "vX.Y.Z"."""
    m = _VERSION_RE.search(text)
    return f"v{m.group(1)}" if m else None


def installed_probes(paths: Paths) -> list[Probe] | None:
    """Probes from the snap tree's install record (versions.json), if there is one."""
    try:
        doc = json.loads(paths.versions_file.read_text())
        comps = doc["components"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = []
    for name, rec in comps.items():
        files = {Path(f).name: paths.snap / f for f in rec.get("files", [])}
        # The component's own version, then those of its parts from other modules.
        asks = [(name, rec), *(rec.get("parts") or {}).items()]
        for label, ask in asks:
            cmd = list(ask.get("version_command") or [])
            if not cmd:
                continue
            binary = files.get(cmd[0], paths.bin_dir / cmd[0])
            out.append(Probe(label, str(ask.get("version", "")), (str(binary), *cmd[1:])))
    return out


def manifest_probes(paths: Paths) -> list[Probe]:
    """Probes from the checkout's manifest, for a tree that was never installed."""
    from microkube.components.manifest import load

    out: list[Probe] = []
    for c in load().components:
        if not c.version_command:
            continue
        base = paths.component_dir(c.dest)
        out.extend(Probe(label, version, (str(base / cmd[0]), *cmd[1:]))
                   for label, version, cmd in [(c.name, c.version, c.version_command),
                                               *c.part_pins()])
    return out


def probe(p: Probe, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Run one binary's version command and read the version from its output."""
    if not os.access(p.argv[0], os.X_OK):
        return ProbeResult(p, None, "not built")
    # A CNI plugin prints its version only when not asked to act as a plugin.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    try:
        proc = subprocess.run(list(p.argv), capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        return ProbeResult(p, None, f"no answer in {timeout:.0f}s")
    except OSError as e:
        return ProbeResult(p, None, f"cannot run: {e.strerror}")
    version = parse_version(proc.stdout) or parse_version(proc.stderr)
    if version is None:
        return ProbeResult(p, None, f"unknown (exit {proc.returncode})")
    return ProbeResult(p, version)


def probe_all(probes: Sequence[Probe]) -> list[ProbeResult]:
    """Every probe at once, results in the order given."""
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        return list(pool.map(probe, probes))


def component_versions(paths: Paths) -> list[ProbeResult]:
    """The version of every component, read from its built binary."""
    probes = installed_probes(paths)
    if probes is None:
        probes = manifest_probes(paths)
    return probe_all(probes)
