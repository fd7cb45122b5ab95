"""dashboard: microkube's web dashboard, read-only, with token sign-in."""

from __future__ import annotations

from microkube.addons.context import AddonContext


def enable(ctx: AddonContext) -> None:
    ctx.apply(ctx.manifest())
    ctx.wait_rollout("deployment/dashboard", "kube-system")
    ctx.say("open it: microkube kubectl port-forward -n kube-system service/dashboard 10443:80, "
            "then http://127.0.0.1:10443")
    ctx.say("sign in with a token: microkube kubectl -n kube-system create token dashboard-user")


def disable(ctx: AddonContext) -> None:
    ctx.delete(ctx.made_objects())
