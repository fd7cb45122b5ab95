"""A Kubernetes object by identity: what the addon state records of each object it applied.

Apart from kubectl.py, so reading the addon state (``status`` does on every run) does not
load the kubectl runner and subprocess behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
