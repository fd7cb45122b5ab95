"""Kubernetes version skew between a joining node and the cluster it joins.

Follows upstream's version skew policy
(https://kubernetes.io/releases/version-skew-policy/): API servers of one
cluster are at most one minor version apart; a kubelet (and kube-proxy) may be
up to three minor versions older than the API server, never newer.
"""

from __future__ import annotations

import re

from microkube.config.node import CONTROL_PLANE

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$")
# Minor versions a kubelet may trail the API server by (upstream's policy since 1.28).
KUBELET_MAX_BEHIND = 3
# Minor versions two API servers of one cluster may differ by.
API_SERVER_MAX_APART = 1


def minor_of(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version like "v1.36.3"; None if it is not one."""
    m = _VERSION.match(version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def refusal(role: str, joiner: str, cluster: str) -> str | None:
    """Why a node of ``role`` running Kubernetes ``joiner`` may not join a cluster running
    ``cluster``, in one line; None when the skew policy allows it.

    ``role`` is "control-plane" or "worker"; versions are "vX.Y.Z".
    """
    theirs, ours = minor_of(joiner), minor_of(cluster)
    if theirs is None:
        return f"the joiner's Kubernetes version {joiner[:40]!r} is not a version"
    if ours is None:
        return None  # this node cannot tell its own version: nothing to compare against
    if theirs[0] != ours[0]:
        return f"Kubernetes {joiner} cannot join a cluster on {cluster}: another major version"
    behind = ours[1] - theirs[1]
    if role == CONTROL_PLANE and abs(behind) > API_SERVER_MAX_APART:
        return (f"a control plane on Kubernetes {joiner} cannot join a cluster on {cluster}: "
                f"API servers may be at most {API_SERVER_MAX_APART} minor version apart")
    if role != CONTROL_PLANE and behind < 0:
        return (f"a worker on Kubernetes {joiner} cannot join a cluster on {cluster}: "
                "a kubelet may not be newer than the API server")
    if role != CONTROL_PLANE and behind > KUBELET_MAX_BEHIND:
        return (f"a worker on Kubernetes {joiner} cannot join a cluster on {cluster}: "
                f"a kubelet may be at most {KUBELET_MAX_BEHIND} minor versions older")
    return None
