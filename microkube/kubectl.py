"""Running the bundled kubectl as the node's admin, for manifests microkube applies itself."""

from __future__ import annotations

import os
import subprocess

from microkube.errors import MicrokubeError
from microkube.paths import Paths


def run(paths: Paths, args: list[str], *, stdin: str | None = None, timeout: float = 120) -> str:
    argv = [str(paths.binary("kubectl")), f"--kubeconfig={paths.kubeconfig('admin')}", *args]
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "KUBECTL_KUBERC": "false"})
    except subprocess.TimeoutExpired:
        raise MicrokubeError(f"kubectl {args[0]} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise MicrokubeError(f"kubectl {args[0]}: {lines[-1] if lines else proc.returncode}")
    return proc.stdout


def apply(paths: Paths, manifest: str) -> str:
    return run(paths, ["apply", "-f", "-"], stdin=manifest)
