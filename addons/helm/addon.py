"""helm: bundled with microkube; 'microkube helm ...' runs it against this cluster."""

from __future__ import annotations

from microkube.addons.context import AddonContext
from microkube.errors import UsageError


def already_enabled(ctx: AddonContext) -> str:
    return "helm is bundled with microkube and always enabled: run 'microkube helm ...'"


def enable(ctx: AddonContext) -> None:
    raise UsageError(f"helm is missing from {ctx.paths.bin_dir}; build it with 'make components'")


def validate_disable(ctx: AddonContext) -> None:
    raise UsageError("helm is part of microkube and cannot be disabled")


def disable(ctx: AddonContext) -> None:
    validate_disable(ctx)
