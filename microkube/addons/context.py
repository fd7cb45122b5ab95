"""What an addon's ``addon.py`` works with: its arguments, templates, kubectl, images.

An addon module defines ``enable(ctx)`` and ``disable(ctx)``, and may define
``validate(ctx)`` (checks that must pass before anything on the node changes)
and ``already_enabled(ctx) -> str`` (what to say when there is nothing to do), and
``validate_disable(ctx)`` (checks before a disable changes anything).
The helpers here keep those functions a few lines long, and make each step
show up on the progress line: "enabling dns… applied, waiting for coredns…
ready in 3.2 s".
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import yaml

from microkube.addons import conflicts
from microkube.addons.repository import AddonSpec
from microkube.addons.state import EnabledAddon
from microkube.config.node import NodeConfig
from microkube.errors import MicrokubeError
from microkube.kube.kubectl import Kubectl, KubectlError, documents, objects_of
from microkube.kube.objects import ObjectRef
from microkube.paths import Paths

TEMPLATE_SUFFIX = ".yaml.j2"


class Reporter:
    """Progress on one line per addon: a start, fragments, an end."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._open = False

    def begin(self, text: str) -> None:
        self.end()
        self._write(text)
        self._open = True

    def step(self, text: str) -> None:
        if not self._open:
            self.begin(text.lstrip())
            return
        self._write(" " + text)

    def end(self, text: str = "") -> None:
        if self._open:
            self._write((" " + text if text else "") + "\n")
            self._open = False

    def say(self, line: str) -> None:
        self.end()
        self._write(line + "\n")


@dataclass
class AddonContext:
    addon: AddonSpec
    paths: Paths
    node: NodeConfig
    args: dict[str, Any]
    kubectl: Kubectl
    reporter: Reporter
    previous: EnabledAddon | None = None  # what the state file recorded, if enabled
    objects: list[ObjectRef] = field(default_factory=list)  # made by this enable
    # Of those, the ones that did not exist before: what a failed enable removes.
    created: list[ObjectRef] = field(default_factory=list)
    rolling_back: bool = False  # disable() is undoing a failed enable
    started: float = field(default_factory=time.monotonic)
    wall_started: float = field(default_factory=time.time)

    # --- the node ---------------------------------------------------------------------
    def restart_daemon(self, name: str, timeout: float = 60.0) -> None:
        """Restart one of the node's daemons and wait until it serves (``timeout`` seconds).

        Goes through the node runtime, so it works under the supervisor and snapd alike.
        """
        from microkube.node.runtime import runtime_for

        runtime_for(self.paths).restart_daemon(name, timeout=timeout)

    # --- progress ---------------------------------------------------------------------
    def step(self, text: str) -> None:
        self.reporter.step(text)

    def say(self, line: str) -> None:
        """A line of its own (after the progress line), indented under it."""
        self.reporter.say("  " + line)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- templates ----------------------------------------------------------------------
    def image(self, name: str) -> str:
        """The full reference of a shipped image, read from its archive."""
        from microkube.images.oci import read_archive

        return read_archive(self.image_archive(name)).name

    def image_archive(self, name: str) -> Path:
        return self.paths.addon_images_dir / f"{name}.tar"

    def values(self, **extra: Any) -> dict[str, Any]:
        return {"node": self.node, "paths": self.paths, "args": self.args,
                "images": _ImageRefs(self), **extra}

    def render(self, template: str, **extra: Any) -> str:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.addon.folder),
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
        )
        try:
            return env.get_template(template).render(**self.values(**extra))
        except jinja2.TemplateError as e:
            where = getattr(e, "lineno", None)
            at = f":{where}" if where else ""
            raise MicrokubeError(f"{self.addon.folder / template}{at}: {e}") from None

    def templates(self) -> list[str]:
        return sorted(p.name for p in self.addon.folder.glob(f"*{TEMPLATE_SUFFIX}"))

    def manifest(self, *templates: str, **extra: Any) -> str:
        """Render templates (default: every *.yaml.j2, in name order) into one stream."""
        names = templates or tuple(self.templates())
        return "\n---\n".join(self.render(t, **extra).strip() for t in names) + "\n"

    # --- the cluster ------------------------------------------------------------------
    def apply(self, manifest: str) -> list[ObjectRef]:
        """Apply a manifest once the API server accepted it in a dry run; returns its objects.

        Its objects are recorded so disable can remove them, and those that did not
        exist before in :attr:`created`, so a failed enable can remove exactly them.
        Objects in a namespace the manifest itself creates cannot be dry-run (the
        namespace does not exist yet); they are checked by the apply itself.
        Raises KubectlError, in the user's terms where the refusal is a known one.
        """
        source = str(self.addon.folder)
        docs, refs = documents(manifest, source), objects_of(manifest, source)
        before = self.kubectl.existing(refs)
        new = [r for r in refs if r not in before]
        fresh_namespaces = {r.name for r in new if r.kind == "Namespace"}
        checkable = [d for d, r in zip(docs, refs, strict=True)
                     if r.namespace not in fresh_namespaces]
        try:
            if checkable:
                self.kubectl.apply_dry_run(yaml.safe_dump_all(checkable, sort_keys=False),
                                           what=f"checking {self.addon.name}")
            self.created += [r for r in new if r not in self.created]
            self.kubectl.apply(manifest, what=f"applying {self.addon.name}")
        except KubectlError as e:
            raise self._in_user_terms(e, refs) from None
        for r in refs:
            if r not in self.objects:
                self.objects.append(r)
        self.step("applied,")
        return refs

    def _in_user_terms(self, error: KubectlError, refs: list[ObjectRef]) -> KubectlError:
        """The refusal, naming the Service that holds an address or port an object needs."""
        want = conflicts.taken(str(error))
        if want is None:
            return error
        try:
            services = json.loads(self.kubectl.run(["get", "services", "-A", "-o", "json"],
                                                   what="reading services"))["items"]
        except (MicrokubeError, ValueError, KeyError):
            services = []
        ns = next((r.namespace or "default" for r in refs
                   if r.kind == want.kind and r.name == want.name), None)
        held = [h for h in conflicts.holders(want, services) if h != f"{ns}/{want.name}"]
        return KubectlError(conflicts.explain(self.addon.name, want, ns, held))

    def made_objects(self, **extra: Any) -> list[ObjectRef]:
        """What enable made: during a roll-back exactly what the failed enable created;
        else the recorded list, else what the templates describe."""
        if self.rolling_back:
            return list(self.created)
        if self.previous is not None and self.previous.objects:
            return list(self.previous.objects)
        return objects_of(self.manifest(**extra), str(self.addon.folder))

    def delete(self, objects: list[ObjectRef], timeout: float = 120) -> None:
        """Delete objects in reverse order of creation (namespaces last)."""
        if not objects:
            return
        self.kubectl.delete(list(reversed(objects)), timeout=timeout,
                            what=f"removing {self.addon.name}")
        self.step("removed,")

    def import_images(self) -> None:
        if not self.addon.images:
            return
        from microkube.images.importer import import_missing

        done = import_missing(self.paths.binary("ctr"), self.paths.containerd_socket,
                              [self.image_archive(n) for n in self.addon.images])
        if done:
            self.step("images imported,")

    def wait_rollout(self, resource: str, namespace: str, timeout: float = 180) -> None:
        """Wait for a Deployment/DaemonSet to be available; say how long enable took."""
        self.step(f"waiting for {resource.split('/')[-1]}…")
        self.kubectl.rollout(resource, namespace, timeout, since=self.wall_started)
        self.step(f"ready in {self.elapsed():.1f} s")


class _ImageRefs(Mapping[str, str]):
    """{{ images.coredns }}: read from the archive only when a template asks for it."""

    def __init__(self, ctx: AddonContext) -> None:
        self._ctx = ctx

    def __getitem__(self, name: str) -> str:
        if name not in self._ctx.addon.images:
            raise KeyError(name)
        return self._ctx.image(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ctx.addon.images)

    def __len__(self) -> int:
        return len(self._ctx.addon.images)


def load_hooks(addon: AddonSpec) -> ModuleType:
    """Import an addon's addon.py under a name of its own."""
    mod_name = f"microkube_addon_{addon.repository}_{addon.name}".replace("-", "_")
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, addon.hooks_file)
    if spec is None or spec.loader is None:
        raise MicrokubeError(f"{addon.hooks_file}: cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except MicrokubeError:
        raise
    except Exception as e:
        del sys.modules[mod_name]
        raise MicrokubeError(f"{addon.hooks_file}: fails to load ({type(e).__name__}: {e})") from None
    for hook in ("enable", "disable"):
        if not callable(getattr(module, hook, None)):
            del sys.modules[mod_name]
            raise MicrokubeError(f"{addon.hooks_file}: defines no {hook}(ctx) function")
    return module
