"""The kubectl half of the Kubernetes client: the bundled kubectl, run as the admin,
for everything that changes the cluster (addons, the bootstrap RBAC).

Manifests go in through server-side apply under one field manager, so the
objects are owned by microkube and re-applying is idempotent; the same apply
can first be checked with a server-side dry run. Failures become one line:
the last thing kubectl said.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from microkube import yamlerrors
from microkube.errors import MicrokubeError
from microkube.kube.objects import ObjectRef
from microkube.paths import Paths
from microkube.proc import failure_line

FIELD_MANAGER = "microkube"
POD_CHECK_EVERY = 3.0
# Waiting states of a container that no amount of waiting fixes.
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ErrImageNeverPull", "ImagePullBackOff",
                           "ErrImagePull", "CreateContainerConfigError", "InvalidImageName",
                           "CreateContainerError", "RunContainerError"})




def apply_args(field_manager: str = FIELD_MANAGER) -> tuple[str, ...]:
    """kubectl's arguments for a server-side apply that owns what it sets as ``field_manager``."""
    return ("apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}")




class KubectlError(MicrokubeError):
    """kubectl failed; the message is one line naming what was being done."""


class Kubectl:
    """The bundled kubectl with the node's admin kubeconfig."""

    def __init__(self, paths: Paths) -> None:
        self.binary = paths.binary("kubectl")
        # KUBECTL_KUBERC=false: a user's ~/.kube/kuberc must not change what microkube runs.
        self.env = {**os.environ, "KUBECONFIG": str(paths.kubeconfig("admin")),
                    "KUBECTL_KUBERC": "false"}

    def run(self, args: Sequence[str], *, input: str | None = None, timeout: float = 120,
            what: str | None = None) -> str:
        argv = [str(self.binary), *args]
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True,
                                  env=self.env, timeout=timeout, check=False)
        except FileNotFoundError:
            raise KubectlError(f"{self.binary} is missing; build it with 'make components'") from None
        except subprocess.TimeoutExpired:
            raise KubectlError(f"{what or 'kubectl ' + args[0]} did not finish within "
                               f"{timeout:.0f} s") from None
        if proc.returncode != 0:
            raise KubectlError(f"{what or 'kubectl ' + args[0]} failed: "
                               f"{failure_line(proc, 'error: ')}")
        return proc.stdout

    def apply(self, manifest: str, what: str = "applying",
              field_manager: str = FIELD_MANAGER) -> None:
        """Server-side apply of a multi-document YAML ``manifest`` as ``field_manager``
        (microkube's addons by default).

        Raises KubectlError with ``what`` in its line.
        """
        self.run([*apply_args(field_manager), "-f", "-"], input=manifest, what=what)

    def apply_dry_run(self, manifest: str, what: str = "checking") -> None:
        """Have the API server check an apply of ``manifest`` (admission, validation,
        allocation, conflicts) and keep nothing. Raises KubectlError with the server's refusal.
        """
        self.run([*apply_args(), "--dry-run=server", "-f", "-"], input=manifest, what=what)

    def existing(self, objects: Sequence[ObjectRef]) -> list[ObjectRef]:
        """Those of ``objects`` the cluster has now, in the given order (one kubectl call).

        An object in a namespace that does not exist counts as absent; a kind the
        server does not know raises KubectlError.
        """
        if not objects:
            return []
        text = _dump_all(objects)
        out = self.run(["get", "--ignore-not-found", "-o", "json", "-f", "-"], input=text,
                       what="looking up existing objects").strip()
        doc = json.loads(out) if out else {}
        items = doc.get("items", []) if doc.get("kind") == "List" else [doc] if doc else []
        seen = [(i["kind"], i["metadata"]["name"], i["metadata"].get("namespace")) for i in items]
        # A namespaced object named without a namespace went to the default one.
        return [o for o in objects
                if any(k == o.kind and n == o.name and o.namespace in (None, ns)
                       for k, n, ns in seen)]

    def delete(self, objects: Sequence[ObjectRef], timeout: float = 120,
               what: str = "deleting") -> None:
        """Delete objects (dependents first, so pods are gone when this returns)."""
        if not objects:
            return
        text = _dump_all(objects)
        self.run(["delete", "--ignore-not-found", "--wait=true", "--cascade=foreground",
                  f"--timeout={int(timeout)}s", "-f", "-"],
                 input=text, timeout=timeout + 30, what=what)

    def delete_selected(self, resources: Sequence[str], selector: str,
                        what: str = "deleting") -> None:
        """Delete, in every namespace, the objects of ``resources`` (kubectl's names:
        ``configmap``, ``deployment.v1.apps``) whose labels match ``selector``; does not wait
        for them to go. Raises KubectlError (e.g. for a kind the server does not know).
        """
        if not resources:
            return
        self.run(["delete", ",".join(resources), "--all-namespaces", "--selector", selector,
                  "--ignore-not-found", "--wait=false"], what=what)

    def exists(self, resource: str, namespace: str | None) -> bool:
        args = ["get", resource, "--ignore-not-found", "-o", "name"]
        if namespace:
            args += ["-n", namespace]
        return bool(self.run(args, what=f"looking up {resource}").strip())

    def get_json(self, resource: str, namespace: str | None = None) -> Any:
        args = ["get", resource, "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.run(args, what=f"reading {resource}"))

    def rollout(self, resource: str, namespace: str, timeout: float,
                since: float | None = None) -> None:
        """Wait until a Deployment/DaemonSet is available; fail early if its pods cannot start.

        Only pods created at ``since`` (a time.time()) or later count: the old pods
        of a rolling update may be failing, and are being replaced.
        """
        argv = [str(self.binary), "rollout", "status", resource, "-n", namespace,
                f"--timeout={int(timeout)}s"]
        proc = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + timeout + 30
            next_check = time.monotonic() + POD_CHECK_EVERY
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise KubectlError(f"{resource} was not ready within {timeout:.0f} s")
                if time.monotonic() >= next_check:
                    self._check_pods(resource, namespace, since)
                    next_check = time.monotonic() + POD_CHECK_EVERY
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()  # our own child
                proc.wait()
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr.read() if proc.stderr else "").splitlines()
                     if ln.strip()]
            self._check_pods(resource, namespace, since)
            raise KubectlError(f"{resource} is not ready: "
                               f"{lines[-1].removeprefix('error: ') if lines else 'timed out'}")

    def _check_pods(self, resource: str, namespace: str, since: float | None) -> None:
        """Raise at once if a pod of ``resource`` is stuck in a state waiting will not fix."""
        try:
            owner = self.get_json(resource, namespace)
            labels = owner["spec"]["selector"]["matchLabels"]
        except (KubectlError, KeyError, TypeError, ValueError):
            return
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        try:
            pods = json.loads(self.run(["get", "pods", "-n", namespace, "-l", selector,
                                        "-o", "json"], what="reading pods"))
        except (KubectlError, ValueError):
            return
        for pod in pods.get("items", []):
            if since is not None and _created(pod) < since - 2:
                continue
            for cs in pod.get("status", {}).get("containerStatuses", []) or []:
                reason = (cs.get("state", {}).get("waiting") or {}).get("reason")
                if reason in STUCK_REASONS:
                    name = pod["metadata"]["name"]
                    raise KubectlError(
                        f"pod {namespace}/{name} is {reason}; see 'microkube kubectl logs -n "
                        f"{namespace} {name}' and 'microkube kubectl describe pod -n {namespace} "
                        f"{name}'")


def _created(obj: dict[str, Any]) -> float:
    stamp = obj.get("metadata", {}).get("creationTimestamp", "")
    try:
        return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _dump_all(objects: Sequence[ObjectRef]) -> str:
    """``objects`` as a YAML stream of their manifests (for ``kubectl -f -``)."""
    import yaml  # here: most of what imports this module never dumps

    return yaml.safe_dump_all([o.manifest() for o in objects], sort_keys=False)


def documents(manifest: str, source: str) -> list[dict[str, Any]]:
    """The objects of a rendered manifest as mappings, in order; MicrokubeError if not YAML."""
    import yaml

    try:
        return [d for d in yaml.safe_load_all(manifest) if d is not None]
    except yaml.YAMLError as e:
        raise MicrokubeError(
            f"{source}: the rendered manifest is not valid YAML{yamlerrors.where(e)}") from None


def objects_of(manifest: str, source: str) -> list[ObjectRef]:
    """The objects a rendered manifest describes, in order."""
    refs = []
    for doc in documents(manifest, source):
        try:
            meta = doc["metadata"]
            refs.append(ObjectRef(api_version=str(doc["apiVersion"]), kind=str(doc["kind"]),
                                  name=str(meta["name"]), namespace=meta.get("namespace")))
        except (KeyError, TypeError):
            raise MicrokubeError(f"{source}: every object needs apiVersion, kind and "
                                 "metadata.name") from None
    return refs
