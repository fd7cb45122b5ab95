"""rbac: RBAC is on from the start (--authorization-mode=RBAC,Node); disabling it allows everything.

Only for users who ask for it: with AlwaysAllow every authenticated client
(every pod's service account included) may do anything.
"""

from __future__ import annotations

from microkube.addons.context import AddonContext
from microkube.config.args import set_flag

DAEMON = "kube-apiserver"
SECURE = "RBAC,Node"
OPEN = "AlwaysAllow"
RESTART_TIMEOUT = 150.0


def already_enabled(ctx: AddonContext) -> str:
    return (f"rbac is already enabled: microkube runs kube-apiserver with "
            f"--authorization-mode={SECURE} from the start")


def _switch(ctx: AddonContext, mode: str) -> None:
    set_flag(ctx.paths, DAEMON, "authorization-mode", mode)
    ctx.step(f"--authorization-mode={mode}, restarting kube-apiserver…")
    # Its graceful stop waits for open watches (up to a minute), then it starts in seconds.
    ctx.restart_daemon(DAEMON, timeout=RESTART_TIMEOUT)
    ctx.step(f"done in {ctx.elapsed():.1f} s")


def enable(ctx: AddonContext) -> None:
    _switch(ctx, SECURE)


def disable(ctx: AddonContext) -> None:
    _switch(ctx, OPEN)
    ctx.say("WARNING: every authenticated client may now do anything; "
            "'microkube enable rbac' turns RBAC back on")
