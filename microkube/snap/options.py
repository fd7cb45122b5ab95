"""``snap set microkube node.<setting>=...``: the node's settings as snap options.

They shape a new node (its name, IP, CIDRs, registry mirror, cgroup): the
install hook creates the node with them, and the configure hook applies a
change as long as the node has never started. After that its name, address
and networks are part of its certificates and its datastore, so a change is
refused with one line instead of half-applied. Unsetting an option keeps
the node's current value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from microkube.config.node import NodeConfig, NodeNameError, name_hint
from microkube.errors import UsageError

# option under node. -> NodeConfig field
NODE_OPTIONS = {
    "name": "node_name",
    "ip": "node_ip",
    "pod-cidr": "pod_cidr",
    "service-cidr": "service_cidr",
    "cluster-domain": "cluster_domain",
    "registry-mirror": "registry_mirror",
    "cgroup-root": "cgroup_root",
}
# The environment variables node.detect() reads for a new node.
ENV_NAMES = {field: f"MICROKUBE_{field.upper()}" for field in NODE_OPTIONS.values()}


def node_settings(doc: Mapping[str, Any]) -> dict[str, str]:
    """NodeConfig fields from the ``node`` options document; unknown or odd keys are refused."""
    out = {}
    for key, value in doc.items():
        if key not in NODE_OPTIONS:
            raise UsageError(f"unknown option node.{key}; known: "
                             + ", ".join(f"node.{k}" for k in NODE_OPTIONS))
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
            raise UsageError(f"node.{key} must be a non-empty string")
        out[NODE_OPTIONS[key]] = str(value)
    return out


def environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The MICROKUBE_* variables that make node.detect() pick these settings."""
    return {ENV_NAMES[field]: value for field, value in settings.items()}


def changed(current: NodeConfig, settings: Mapping[str, str], started: bool) -> NodeConfig | None:
    """The node with the settings applied; None if nothing changes.

    Raises UsageError if a setting changes on a node that has already started.
    """
    values: dict[str, Any] = dict(settings)
    try:
        new = dataclasses.replace(current, **values)  # NodeConfig validates the values
    except NodeNameError as e:
        raise UsageError(f"node.name: {e}; {name_hint(e.name, in_snap=True)}") from None
    if new == current:
        return None
    if started:
        field = next(f for f in settings if getattr(new, f) != getattr(current, f))
        option = next(k for k, v in NODE_OPTIONS.items() if v == field)
        raise UsageError(f"node.{option} cannot change once the node has started "
                         f"(it is {getattr(current, field)})")
    return new
