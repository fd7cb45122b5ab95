"""The bundled helm, as the node's admin, for the releases the deploy folder asks for.

Each release carries the label ``microkube.io/manifest=<file key>`` in Helm's own
storage, so the releases a file made are found by a selector (``helm list -l``),
like its objects. Failures become one line: the last thing helm said.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.manifests.documents import MANIFEST_LABEL, ChartRequest
from microkube.paths import Paths
from microkube.proc import failure_line

TIMEOUT = 120.0  # seconds one helm command may take


class HelmError(MicrokubeError):
    """helm failed; the message is one line naming the release."""


class Helm:
    """The bundled helm with the node's admin kubeconfig and a home of its own."""

    def __init__(self, paths: Paths) -> None:
        self.binary = paths.binary("helm")
        home = paths.helm_home
        self.env = {**os.environ, "KUBECONFIG": str(paths.kubeconfig("admin")),
                    "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_DATA_HOME": str(home / "data"), "HELM_DRIVER": "secret"}
        self.scratch = home / "scratch"

    def run(self, args: Sequence[str], what: str) -> str:
        """helm's stdout for ``args``; HelmError naming ``what`` when it fails."""
        try:
            proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True,
                                  env=self.env, timeout=TIMEOUT, check=False)
        except FileNotFoundError:
            raise HelmError(f"{self.binary} is missing; build it with 'make components'") from None
        except subprocess.TimeoutExpired:
            raise HelmError(f"{what} did not finish within {TIMEOUT:.0f} s") from None
        if proc.returncode != 0:
            raise HelmError(f"{what} failed: {failure_line(proc, 'Error: ')}")
        return proc.stdout

    def install(self, request: ChartRequest, folder: Path, key: str) -> None:
        """Install or upgrade ``request``'s release (its namespace made if missing), labelled
        with ``key``; relative chart paths are in ``folder``. Values are reset to the
        chart's plus the request's on every upgrade, so removed values go too.

        Raises HelmError with helm's refusal.
        """
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            chart = request.chart
            local = request.local_chart(folder)
            if request.content is not None:
                archive = Path(tmp) / "chart.tgz"
                archive.write_bytes(request.content)
                chart = str(archive)
            elif local is not None:
                chart = str(local)
            args = ["upgrade", "--install", request.release, chart,
                    "--namespace", request.namespace, "--create-namespace", "--reset-values",
                    "--labels", f"{MANIFEST_LABEL}={key}"]
            if request.repo:
                args += ["--repo", request.repo]
            if request.version:
                args += ["--version", request.version]
            if request.values:
                values = Path(tmp) / "values.yaml"
                values.write_text(request.values)
                args += ["--values", str(values)]
            for name, value in sorted(request.set.items()):
                args += ["--set-json", f"{name}={json.dumps(value)}"]
            self.run(args, f"installing chart {request.release} in {request.namespace}")

    def releases(self, key: str) -> set[tuple[str, str]]:
        """The (release, namespace) pairs labelled with ``key``, in every namespace and
        every state (failed and pending ones too)."""
        out = self.run(["list", "--all-namespaces", "--selector", f"{MANIFEST_LABEL}={key}",
                        "--output", "json"], f"listing the releases of {key}")
        try:
            return {(str(r["name"]), str(r["namespace"])) for r in json.loads(out or "[]")}
        except (ValueError, KeyError, TypeError):
            raise HelmError(f"listing the releases of {key}: helm printed no JSON list") from None

    def uninstall(self, release: str, namespace: str) -> None:
        """Uninstall a release (gone already counts as done); HelmError if helm refuses."""
        self.run(["uninstall", release, "--namespace", namespace, "--ignore-not-found"],
                 f"uninstalling chart {release} from {namespace}")
