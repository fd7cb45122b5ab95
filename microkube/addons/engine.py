"""``microkube enable`` and ``disable``: check everything, then change the node.

Order of work for enable: parse and check every argument, resolve the
requirements (registry needs storage: storage first), check architectures,
image archives and each addon's own ``validate``; only then, holding the
node's addon lock, import images and run each addon's ``enable``. A bad
argument or a missing image therefore changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from microkube.addons import arguments
from microkube.addons.arguments import Request
from microkube.addons.catalog import Catalog
from microkube.addons.context import AddonContext, Reporter, load_hooks
from microkube.addons.listing import flag_contains
from microkube.addons.lock import addon_lock
from microkube.addons.repository import AddonSpec
from microkube.addons.state import AddonState
from microkube.errors import MicrokubeError, UsageError
from microkube.kube.kubectl import Kubectl
from microkube.paths import Paths

STATUS_CONFIGMAP = "microkube-addons"  # kube-system; the dashboard lists addons from it


@dataclass
class Planned:
    addon: AddonSpec
    request: Request
    explicit: bool  # named by the user (not only required by another addon)
    ctx: AddonContext
    hooks: ModuleType
    enabled: bool


def _node(paths: Paths) -> Any:
    from microkube.node import setup
    from microkube.node.runtime import runtime_for

    runtime_for(paths).require_running()
    return setup.load_context(paths).node


def is_enabled(ctx: AddonContext, state: AddonState) -> bool:
    """Ask the node whether an addon is enabled, as its index says to tell."""
    when = ctx.addon.enabled_when
    if when.bundled:
        return ctx.paths.binary(when.bundled).exists()
    if when.flag_daemon and when.flag_name and when.flag_contains:
        return flag_contains(ctx.paths, ctx.node.substitutions(), when.flag_daemon,
                             when.flag_name, when.flag_contains)
    assert when.resource is not None
    return ctx.addon.ref in state.enabled and ctx.kubectl.exists(when.resource, when.namespace)


def _context(paths: Paths, node: Any, kubectl: Kubectl, reporter: Reporter, addon: AddonSpec,
             values: dict[str, Any], state: AddonState) -> AddonContext:
    return AddonContext(addon=addon, paths=paths, node=node, args=values, kubectl=kubectl,
                        reporter=reporter, previous=state.enabled.get(addon.ref))


def _check_platform(paths: Paths, addon: AddonSpec) -> None:
    from microkube.images.oci import host_architecture

    arch = host_architecture()
    if arch not in addon.architectures:
        raise UsageError(f"{addon.name} is not available on {arch} "
                         f"(it supports {', '.join(addon.architectures)})")
    for image in addon.images:
        archive = paths.addon_images_dir / f"{image}.tar"
        if not archive.is_file():
            raise MicrokubeError(f"{addon.name}: image archive {archive} is missing; "
                                 "build it with 'make components'")


def enable(paths: Paths, tokens: Sequence[str], reporter: Reporter) -> None:
    if not tokens:
        raise UsageError("name at least one addon to enable; see 'microkube status' for the list")
    catalog = Catalog.load(paths)
    requests = arguments.parse(tokens, catalog.find)
    node = _node(paths)
    kubectl = Kubectl(paths)
    by_addon = {r.addon: r for r in requests}
    plan_addons = catalog.with_requirements(r.addon for r in requests)
    for addon in plan_addons:
        _check_platform(paths, addon)
    with addon_lock(paths.var_dir / "addons.lock", reporter.say):
        state = AddonState.load(paths.addons_state_file)
        plan: list[Planned] = []
        for addon in plan_addons:
            req = by_addon.get(addon) or Request(addon=addon, word=addon.name)
            if addon not in by_addon:
                req.values = arguments.check(req)
            ctx = _context(paths, node, kubectl, reporter, addon, req.values, state)
            hooks = load_hooks(addon)
            plan.append(Planned(addon, req, addon in by_addon, ctx, hooks,
                                is_enabled(ctx, state)))
        todo = [p for p in plan if not p.enabled or _reconfigure(p, state)]
        for p in todo:  # every check before the first change
            validate = getattr(p.hooks, "validate", None)
            if callable(validate):
                validate(p.ctx)
        for p in plan:
            if p not in todo:
                if p.explicit:
                    explain = getattr(p.hooks, "already_enabled", None)
                    reporter.say(explain(p.ctx) if callable(explain)
                                 else f"{p.addon.name} is already enabled")
                continue
            _enable_one(p, state, reporter)
        if todo:
            publish_status(paths, catalog, kubectl, state, node)


def _reconfigure(p: Planned, state: AddonState) -> bool:
    """An enabled addon named again with different arguments is enabled again with them."""
    prev = state.enabled.get(p.addon.ref)
    return p.explicit and bool(p.request.given) and (prev is None or prev.arguments != p.ctx.args)


def _enable_one(p: Planned, state: AddonState, reporter: Reporter) -> None:
    verb = "reconfiguring" if p.enabled else "enabling"
    reporter.begin(f"{verb} {p.addon.name}…")
    p.ctx.started, p.ctx.wall_started = time.monotonic(), time.time()  # this addon's own clock
    try:
        p.ctx.import_images()
        p.hooks.enable(p.ctx)
    finally:
        reporter.end()
    if p.addon.enabled_when.needs_cluster:
        state.mark_enabled(p.addon.ref, p.addon.version, _plain(p.ctx.args), p.ctx.objects)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Argument values as YAML-safe builtins."""
    plain: dict[str, Any] = json.loads(json.dumps(values))
    return plain


def disable(paths: Paths, tokens: Sequence[str], reporter: Reporter) -> None:
    if not tokens:
        raise UsageError("name at least one addon to disable; see 'microkube status' for the list")
    catalog = Catalog.load(paths)
    requests = arguments.parse(tokens, catalog.find, disable=True)
    node = _node(paths)
    kubectl = Kubectl(paths)
    named = {r.addon: r for r in requests}
    # Dependents go before what they require: registry before storage.
    order = [a for a in reversed(catalog.with_requirements(named)) if a in named]
    with addon_lock(paths.var_dir / "addons.lock", reporter.say):
        state = AddonState.load(paths.addons_state_file)
        plan = []
        for addon in order:
            ctx = _context(paths, node, kubectl, reporter, addon, named[addon].values, state)
            enabled = is_enabled(ctx, state) or _leftovers(ctx)
            plan.append((addon, ctx, enabled))
        for addon, ctx, enabled in plan:  # every check before the first change
            if not enabled:
                continue
            check = getattr(load_hooks(addon), "validate_disable", None)
            if callable(check):
                check(ctx)
            for dep in catalog.dependents(addon):
                if dep.ref in state.enabled and dep not in named:
                    raise UsageError(f"{dep.name} needs {addon.name}; disable {dep.name} first "
                                     f"(or both: microkube disable {dep.name} {addon.name})")
        for addon, ctx, enabled in plan:
            if not enabled:
                reporter.say(f"{addon.name} is not enabled")
                continue
            hooks = load_hooks(addon)
            reporter.begin(f"disabling {addon.name}…")
            ctx.started = time.monotonic()
            try:
                hooks.disable(ctx)
                reporter.step(f"done in {ctx.elapsed():.1f} s")
            finally:
                reporter.end()
            state.mark_disabled(addon.ref)
        if any(enabled for _, _, enabled in plan):
            publish_status(paths, catalog, kubectl, state, node)


def _leftovers(ctx: AddonContext) -> bool:
    """Objects of a resource-checked addon the state file lost track of (disable cleans up)."""
    when = ctx.addon.enabled_when
    return bool(when.resource) and ctx.kubectl.exists(str(when.resource), when.namespace)


def publish_status(paths: Paths, catalog: Catalog, kubectl: Kubectl, state: AddonState,
                   node: Any) -> None:
    """Keep kube-system/microkube-addons current (the dashboard shows it); best effort."""
    from microkube.addons.listing import addon_rows

    rows = addon_rows(paths, catalog, state, node.substitutions())
    doc = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": STATUS_CONFIGMAP, "namespace": "kube-system",
                        "labels": {"app.kubernetes.io/managed-by": "microkube"}},
           "data": {"addons.json": json.dumps(rows, sort_keys=True)}}
    with contextlib.suppress(MicrokubeError):  # status and the CLI do not depend on it
        kubectl.apply(json.dumps(doc), what="publishing the addon list")
