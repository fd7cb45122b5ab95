"""A manifest file parsed: the objects to apply, labelled as microkube's, and the charts
its ``HelmChart`` documents ask for.

``HelmChart`` follows k3s's ``helm.cattle.io/v1`` shape, of which microkube reads
``metadata.name`` (the release), ``spec.chart`` (a local archive, relative to the
folder, or a chart name with ``spec.repo``), ``spec.chartContent`` (the archive,
base64), ``spec.version``, ``spec.targetNamespace`` (default: the document's
namespace, else ``default``), ``spec.valuesContent`` (YAML) and ``spec.set``. The
resource is not created in the cluster: microkube is its controller.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PyYAML (~2 MB) is imported by the functions that read or write manifests, not here: the
# cluster agent runs the deploy folder's deployer for the node's lifetime, idle most of it.
from microkube import yamlerrors
from microkube.errors import MicrokubeError

MANIFEST_LABEL = "microkube.io/manifest"
DIGEST_LABEL = "microkube.io/manifest-digest"
FILE_ANNOTATION = "microkube.io/manifest-file"
HELMCHART_API = "helm.cattle.io/v1"
DIGEST_LABEL_LENGTH = 16
_RELEASE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$")
_SPEC_KEYS = frozenset({"chart", "chartContent", "repo", "version", "targetNamespace",
                        "valuesContent", "set", "createNamespace"})


class ManifestError(MicrokubeError):
    """A manifest file that cannot be applied as written; the message names the file."""


@dataclass(frozen=True)
class ChartRequest:
    """One Helm release a file asks for.

    ``chart`` is a local archive's path, or a chart name in ``repo``; ``content``
    is the archive itself when the document carried it (``chartContent``).
    ``values`` is YAML text; ``set`` maps dotted keys to values (``--set-json``).
    """

    release: str
    namespace: str
    chart: str = ""
    content: bytes | None = None
    repo: str = ""
    version: str = ""
    values: str = ""
    set: dict[str, Any] = field(default_factory=dict)

    def local_chart(self, folder: Path) -> Path | None:
        """The archive on disk this request names (relative paths are in ``folder``), if any."""
        if self.content is not None or self.repo or not self.chart:
            return None
        path = Path(self.chart)
        return path if path.is_absolute() else folder / path


@dataclass
class Parsed:
    """A manifest file's plain objects (in order) and its chart requests."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    charts: list[ChartRequest] = field(default_factory=list)

    def kinds(self) -> set[tuple[str, str]]:
        """The (apiVersion, kind) of every object."""
        return {(str(o["apiVersion"]), str(o["kind"])) for o in self.objects}


def parse(text: str, source: str) -> Parsed:
    """The objects and chart requests of a manifest's ``text``; ``source`` names it in errors.

    Raises ManifestError for YAML that does not parse, a document that is not a
    Kubernetes object, or a ``HelmChart`` microkube cannot install.
    """
    import yaml

    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ManifestError(f"{source}: not valid YAML{yamlerrors.where(e)}") from None
    parsed = Parsed()
    for n, doc in enumerate(_expand_lists(docs, source), 1):
        where = f"{source}: document {n}"
        if not isinstance(doc, dict) or not all(
                isinstance(doc.get(k), str) and doc[k] for k in ("apiVersion", "kind")) or not (
                isinstance(doc.get("metadata"), dict) and doc["metadata"].get("name")):
            raise ManifestError(f"{where} is not a Kubernetes object "
                                "(apiVersion, kind and metadata.name are needed)")
        if doc["kind"] == "HelmChart" and doc["apiVersion"] == HELMCHART_API:
            parsed.charts.append(chart_request(doc, where))
        else:
            parsed.objects.append(doc)
    return parsed


def _expand_lists(docs: list[Any], source: str) -> list[Any]:
    """Documents with every ``kind: List`` (as ``kubectl get -o yaml`` writes) replaced by its items."""
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            if not isinstance(doc["items"], list):
                raise ManifestError(f"{source}: a List's items must be a list")
            out += doc["items"]
        else:
            out.append(doc)
    return out


def chart_request(doc: dict[str, Any], where: str) -> ChartRequest:
    """The release a ``HelmChart`` document asks for; ManifestError naming ``where`` if unusable."""
    import yaml

    meta = doc["metadata"]
    name = str(meta["name"])
    if not _RELEASE.match(name):
        raise ManifestError(f"{where}: HelmChart name {name!r} is not a release name "
                            "(lowercase letters, digits and '-', at most 53)")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError(f"{where}: HelmChart {name} has no spec")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise ManifestError(f"{where}: HelmChart {name}: microkube does not support "
                            f"spec.{', spec.'.join(unknown)}")
    content = None
    if spec.get("chartContent"):
        try:
            content = base64.b64decode(str(spec["chartContent"]), validate=True)
        except (binascii.Error, ValueError):
            raise ManifestError(f"{where}: HelmChart {name}: chartContent is not base64") from None
    elif not spec.get("chart"):
        raise ManifestError(f"{where}: HelmChart {name} names no chart (spec.chart or "
                            "spec.chartContent)")
    values = spec.get("valuesContent") or ""
    settings = spec.get("set") or {}
    if not isinstance(values, str):
        raise ManifestError(f"{where}: HelmChart {name}: valuesContent must be a YAML string")
    try:
        yaml.safe_load(values)
    except yaml.YAMLError as e:
        raise ManifestError(f"{where}: HelmChart {name}: valuesContent is not valid YAML"
                            f"{yamlerrors.where(e)}") from None
    if not isinstance(settings, dict):
        raise ManifestError(f"{where}: HelmChart {name}: set must map keys to values")
    namespace = spec.get("targetNamespace") or meta.get("namespace") or "default"
    return ChartRequest(release=name, namespace=str(namespace), chart=str(spec.get("chart") or ""),
                        content=content, repo=str(spec.get("repo") or ""),
                        version=str(spec.get("version") or ""), values=values,
                        set={str(k): v for k, v in settings.items()})


def labelled(obj: dict[str, Any], key: str, digest: str, file: str) -> dict[str, Any]:
    """A copy of ``obj`` marked as created from the folder's ``file``: the labels
    MANIFEST_LABEL=``key`` and DIGEST_LABEL=(``digest`` shortened), the annotation
    FILE_ANNOTATION=``file``."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    meta["labels"] = {**(meta.get("labels") or {}), MANIFEST_LABEL: key,
                      DIGEST_LABEL: short_digest(digest)}
    meta["annotations"] = {**(meta.get("annotations") or {}), FILE_ANNOTATION: file}
    return out


def short_digest(digest: str) -> str:
    """The digest as it fits in a label value."""
    return digest[:DIGEST_LABEL_LENGTH]


def resource_arg(api_version: str, kind: str) -> str:
    """A kind as kubectl names it on the command line: ``configmap``, ``deployment.v1.apps``."""
    group, _, version = api_version.rpartition("/")
    return f"{kind.lower()}.{version}.{group}" if group else kind.lower()
