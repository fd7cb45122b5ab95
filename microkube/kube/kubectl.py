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
from dataclasses import dataclass
from typing import Any

import yaml

from microkube import yamlerrors
from microkube.errors import MicrokubeError
from microkube.paths import Paths

FIELD_MANAGER = "microkube"
POD_CHECK_EVERY = 3.0
# Waiting states of a container that no amount of waiting fixes.
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ErrImageNeverPull", "ImagePullBackOff",
                           "ErrImagePull", "CreateContainerConfigError", "InvalidImageName",
                           "CreateContainerError", "RunContainerError"})


class KubectlError(MicrokubeError):
    """kubectl failed; the message is one line naming what was being done."""


@dataclass(frozen=True)
class ObjectRef:
    """One Kubernetes object by identity: apiVersion, kind, name and namespace."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def manifest(self) -> dict[str, Any]:
        """The smallest manifest naming the object (enough for kubectl delete/get)."""
        meta: dict[str, str] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": meta}

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind.lower()}/{self.name}{where}"


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
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
            raise KubectlError(f"{what or 'kubectl ' + args[0]} failed: "
                               f"{detail.removeprefix('error: ')}")
        return proc.stdout

    def apply(self, manifest: str, what: str = "applying", dry_run: bool = False) -> None:
        """Server-side apply of a multi-document YAML ``manifest`` as microkube.

        With ``dry_run`` the API server checks every object (admission, validation,
        conflicts) and changes nothing. Raises KubectlError with ``what`` in its line.
        """
        args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}"]
        if dry_run:
            args.append("--dry-run=server")
        self.run([*args, "-f", "-"], input=manifest, what=what)

    def delete(self, objects: Sequence[ObjectRef], timeout: float = 120,
               what: str = "deleting") -> None:
        """Delete objects (dependents first, so pods are gone when this returns)."""
        if not objects:
            return
        text = yaml.safe_dump_all([o.manifest() for o in objects], sort_keys=False)
        self.run(["delete", "--ignore-not-found", "--wait=true", "--cascade=foreground",
                  f"--timeout={int(timeout)}s", "-f", "-"],
                 input=text, timeout=timeout + 30, what=what)

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


def objects_of(manifest: str, source: str) -> list[ObjectRef]:
    """The objects a rendered manifest describes, in order."""
    try:
        docs = [d for d in yaml.safe_load_all(manifest) if d is not None]
    except yaml.YAMLError as e:
        raise MicrokubeError(
            f"{source}: the rendered manifest is not valid YAML{yamlerrors.where(e)}") from None
    refs = []
    for doc in docs:
        try:
            meta = doc["metadata"]
            refs.append(ObjectRef(api_version=str(doc["apiVersion"]), kind=str(doc["kind"]),
                                  name=str(meta["name"]), namespace=meta.get("namespace")))
        except (KeyError, TypeError):
            raise MicrokubeError(f"{source}: every object needs apiVersion, kind and "
                                 "metadata.name") from None
    return refs
