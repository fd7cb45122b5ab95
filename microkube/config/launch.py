"""The launch configuration: a YAML file that shapes a node at its first start.

Read from the path given to ``microkube start --config FILE``, else from
``<common>/.microkube.yaml`` (``$SNAP_COMMON/.microkube.yaml`` in the snap), and
only while the node has never been set up. The keys follow MicroK8s's launch
configuration (``version``, ``extraKubeletArgs``..., ``addons``) plus the node's
own settings (``nodeName``, ``nodeAddress``, ``podCIDR``, ``serviceCIDR``,
``clusterDomain``, ``networkPolicy``, ``datastore``), and ``join`` with ``joinAsWorker``
to join a cluster instead of forming one (cluster/launchjoin.py). Everything is checked (schema,
addresses, addon names and arguments) before a byte is written; a bad file gets one
line naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube import yamlerrors
from microkube.config import node
from microkube.config.node import NodeConfig, NodeNameError
from microkube.datastore import settings as datastore_settings
from microkube.datastore.settings import Datastore
from microkube.errors import UsageError
from microkube.fsutil import write_atomic
from microkube.paths import Paths
from microkube.schemas import field_path, first_error, short_message

VERSIONS = ["0.1.0"]
WELL_KNOWN_NAME = ".microkube.yaml"
# A launch file is a page of YAML; anything bigger is not one (1 MiB).
MAX_SIZE = 1 << 20
# launch-file key -> the daemon whose argument file it extends (MicroK8s's names first).
EXTRA_ARGS = {
    "extraKubeAPIServerArgs": "kube-apiserver",
    "extraKubeletArgs": "kubelet",
    "extraKubeProxyArgs": "kube-proxy",
    "extraKubeControllerManagerArgs": "kube-controller-manager",
    "extraKubeSchedulerArgs": "kube-scheduler",
    "extraContainerdArgs": "containerd",
    "extraEtcdArgs": "etcd",
    "extraFlanneldArgs": "flanneld",
}
# launch-file key -> NodeConfig field.
NODE_SETTINGS = {"nodeName": "node_name", "nodeAddress": "node_ip", "podCIDR": "pod_cidr",
                 "serviceCIDR": "service_cidr", "clusterDomain": "cluster_domain"}
# launch-file key -> NodeConfig field, for the on/off settings.
NODE_SWITCHES = {"networkPolicy": "network_policy"}
FLAG_PATTERN = r"^--[A-Za-z0-9][-A-Za-z0-9_.]*$"
# launch-file key of a TLS file -> its role (datastore/settings.py).
DATASTORE_TLS = {"caFile": "ca", "certFile": "cert", "keyFile": "key"}
# Keys a node that joins takes from its cluster instead: a launch file with ``join`` may not set them.
CLUSTER_KEYS = ("podCIDR", "serviceCIDR", "clusterDomain", "networkPolicy", "datastore")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"enum": VERSIONS},
        **{key: {"type": "string", "minLength": 1} for key in NODE_SETTINGS},
        **{key: {"type": "boolean"} for key in NODE_SWITCHES},
        **{key: {
            "type": "object",
            "additionalProperties": False,
            # "--flag": value; null removes the flag from the default arguments.
            "patternProperties": {FLAG_PATTERN: {"type": ["string", "number", "boolean", "null"]}},
        } for key in EXTRA_ARGS},
        # etcd | sqlite | postgres://… | mysql://… | https://… (a list: one etcd cluster),
        # or {endpoint: …, caFile, certFile, keyFile} for an external one with TLS. Checked
        # by _datastore, whose messages never repeat a value (it may hold a password).
        "datastore": {"type": ["string", "array", "object"]},
        # The string `microkube add-node` prints: <ip>:<port>/<token>/<fingerprint>; its form
        # is checked by cluster/joinstring.py (the config layer does not import the cluster's).
        "join": {"type": "string", "minLength": 1},
        "joinAsWorker": {"type": "boolean"},
        "addons": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^([a-z0-9-]+/)?[a-z0-9][a-z0-9-]*$"},
                "args": {"type": "array", "items": {"type": "string"}},
                "disabled": {"type": "boolean"},
            },
        }},
    },
}


@dataclass(frozen=True)
class LaunchConfig:
    """A checked launch file: node settings, per-daemon flags (None removes one), addon steps.

    ``addons`` holds ("enable"|"disable", [name, *args]) in file order. ``join`` is the
    join string (its form not checked yet: cluster/joinstring.py), ``join_as_worker``
    whether the node joins as a worker rather than a control plane.
    """

    source: Path
    settings: dict[str, Any]  # NodeConfig field -> value (text, or a bool for a switch)
    flags: dict[str, dict[str, str | None]]
    addons: list[tuple[str, list[str]]]
    datastore: Datastore | None = None
    join: str | None = None
    join_as_worker: bool = False


def well_known(paths: Paths) -> Path:
    """Where a launch file is picked up without ``--config``."""
    return paths.common / WELL_KNOWN_NAME


def _flag_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse(text: str, source: Path) -> LaunchConfig:
    """Check a launch file's text against the schema; UsageError naming the key otherwise."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{source}: not valid YAML{yamlerrors.where(e)}") from None
    if doc is None:
        doc = {}
    err = first_error(SCHEMA, doc)
    if err is not None:
        raise UsageError(f"{source}: {field_path(err.absolute_path, doc)}: {short_message(err)}")
    _check_join_keys(doc, source)
    settings = {NODE_SETTINGS[k]: v for k, v in doc.items() if k in NODE_SETTINGS}
    settings.update({NODE_SWITCHES[k]: v for k, v in doc.items() if k in NODE_SWITCHES})
    flags = {daemon: {flag.removeprefix("--"): _flag_value(v) for flag, v in doc[key].items()}
             for key, daemon in EXTRA_ARGS.items() if key in doc}
    addons = [("disable" if a.get("disabled") else "enable", [a["name"], *a.get("args", [])])
              for a in doc.get("addons", [])]
    store = _datastore(doc.get("datastore"), source)
    if store is not None:
        settings["datastore"] = store.kind
    return LaunchConfig(source, settings, flags, addons, store, doc.get("join"),
                        bool(doc.get("joinAsWorker", False)))


def _check_join_keys(doc: dict[str, Any], source: Path) -> None:
    """UsageError naming the key for ``joinAsWorker`` without ``join``, or a cluster-wide
    setting beside ``join`` (the cluster's own CIDRs, domain and datastore apply)."""
    if "join" not in doc:
        if "joinAsWorker" in doc:
            raise UsageError(f"{source}: joinAsWorker: applies only with 'join'")
        return
    for key in CLUSTER_KEYS:
        if key in doc:
            raise UsageError(f"{source}: {key}: a node that joins takes the cluster's; "
                             "remove it or 'join'")


def _datastore(raw: Any, source: Path) -> Datastore | None:
    """The file's ``datastore`` checked (TLS file paths relative to the file's folder)."""
    if raw is None:
        return None
    endpoint, tls = raw, {}
    try:
        if isinstance(raw, dict):
            unknown = sorted(set(raw) - {"endpoint", *DATASTORE_TLS})
            if unknown:
                raise UsageError(f"unknown key '{unknown[0]}'")
            if "endpoint" not in raw:
                raise UsageError("'endpoint' is missing")
            for key in DATASTORE_TLS:
                if key in raw and not (isinstance(raw[key], str) and raw[key]):
                    raise UsageError(f"{key}: expected a file path")
            endpoint = raw["endpoint"]
            tls = {DATASTORE_TLS[k]: source.parent / v for k, v in raw.items()
                   if k in DATASTORE_TLS}
        return datastore_settings.parse(endpoint, tls)
    except UsageError as e:
        raise UsageError(f"{source}: datastore: {e}") from None


def load(path: Path) -> LaunchConfig:
    """Read and check a launch file; UsageError (one line) if it is missing or invalid."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SIZE + 1)  # bounded: /dev/zero or a huge file is refused
    except FileNotFoundError:
        raise UsageError(f"{path}: no such launch configuration file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None
    if len(data) > MAX_SIZE:
        raise UsageError(f"{path}: larger than {MAX_SIZE // 2**10} KiB; not a launch "
                         "configuration")
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse(text, path)


def node_config(paths: Paths, launch: LaunchConfig) -> NodeConfig:
    """The new node's settings: the launch file's over the detected ones; errors name the key."""
    try:
        return node.detect(in_snap=paths.in_snap, settings=launch.settings)
    except NodeNameError as e:
        if "node_name" not in launch.settings:
            raise
        raise UsageError(f"{launch.source}: nodeName: {e}") from None
    except UsageError as e:
        message = str(e)
        for key, field in NODE_SETTINGS.items():
            if message.startswith(f"{field}:") and field in launch.settings:
                raise UsageError(f"{launch.source}: {key}{message[len(field):]}") from None
        raise


def pending_addons_file(paths: Paths) -> Path:
    """The addon steps of the launch file still to run once the node is Ready."""
    return paths.var_dir / "launch-addons.json"


def pending_addons_lock(paths: Paths) -> Path:
    """Held while the addon steps run, so two runners (``start``, the snap's deployer)
    never run the same step twice."""
    return paths.var_dir / "launch-addons.lock"


def pending_addons(paths: Paths) -> list[tuple[str, list[str]]]:
    """The steps still to run, in order ([] if none); UsageError naming the record when it is
    damaged (not JSON, or not a list of [verb, [word...]])."""
    path = pending_addons_file(paths)
    try:
        raw = json.loads(path.read_bytes())
        if not isinstance(raw, list) or not all(
                isinstance(step, list) and len(step) == 2 and isinstance(step[1], list)
                for step in raw):
            raise ValueError("not a list of [verb, [word...]]")
        return [(str(verb), [str(t) for t in tokens]) for verb, tokens in raw]
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) else "damaged"
        raise UsageError(f"{path}: cannot read the launch file's addon steps ({why}); remove it "
                         "to drop them") from None


def save_pending_addons(paths: Paths, steps: list[tuple[str, list[str]]]) -> None:
    """Record the addon steps still to run (none: the record goes)."""
    if steps:
        write_atomic(pending_addons_file(paths), json.dumps(steps) + "\n")
    else:
        pending_addons_file(paths).unlink(missing_ok=True)
