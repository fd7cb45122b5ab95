"""The manifest deployer: applies the deploy folder (microkube.manifests), on control planes.

A daemon of its own rather than a thread of the cluster agent: it needs only the
API server, restarts on its own when it fails, and its log is its own file.
"""

from __future__ import annotations

import contextlib
import sys

from microkube.services.base import Daemon, NodeContext


class ManifestDeployer(Daemon):
    name = "manifests"
    # The interpreter the snap ships (bin/python3); outside it, the one running microkube.
    binary = "python3"
    after = ("kubelite",)
    stop_timeout = 5.0

    def can_start(self, ctx: NodeContext) -> bool:
        return ctx.paths.kubeconfig("admin").exists()

    def prepare(self, ctx: NodeContext) -> None:
        # A report from an earlier run would make it look ready before its first pass.
        with contextlib.suppress(FileNotFoundError):
            ctx.paths.manifests_report_file.unlink()
        ctx.paths.manifests_dir.mkdir(parents=True, exist_ok=True)

    def command(self, ctx: NodeContext) -> list[str]:
        return [sys.executable, "-P", "-m", "microkube.manifests", *ctx.args(self.name)]

    def ready(self, ctx: NodeContext) -> bool:
        # Written once the first pass over the folder is done.
        return ctx.paths.manifests_report_file.exists()
