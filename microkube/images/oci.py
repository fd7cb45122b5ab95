"""Write OCI image archives (an OCI image layout in one tar) deterministically.

The same inputs always give the same bytes, so the same digests: every tar
entry is sorted, owned by 0:0 with empty owner names, and dated at the Unix
epoch; JSON is written with sorted keys and no whitespace.

Layers are stored uncompressed by default. The archives ship inside the snap,
whose squashfs already compresses them, and containerd unpacks an
uncompressed layer without a gunzip pass; the layer digest then equals its
diff_id. ``compress=True`` gives gzip layers (header mtime 0) for archives
that travel on their own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microkube.errors import MicrokubeError
from microkube.fsutil import write_atomic

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# containerd names an imported image after this annotation (the full name);
# the OCI one carries only the tag, as the OCI spec and `ctr export` do.
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_architecture() -> str:
    """The machine's architecture, spelled as OCI (Go's GOARCH) spells it."""
    machine = platform.machine()
    try:
        return _GO_ARCH[machine]
    except KeyError:
        raise MicrokubeError(f"unsupported machine architecture for images: {machine}") from None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Stable JSON bytes: the digest of a document must not depend on dict order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class _Entry:
    kind: str  # "file", "dir" or "symlink"
    mode: int = 0
    data: bytes = b""
    target: str = ""


def _clean(path: str) -> str:
    """An in-image absolute path as a tar member name: 'usr/bin/env'."""
    norm = posixpath.normpath("/" + path).lstrip("/")
    if not norm or ".." in path.split("/") or "\0" in norm:
        raise MicrokubeError(f"invalid path for an image layer: {path!r}")
    return norm


class Layer:
    """A filesystem layer built up in memory, then written as a sorted tar.

    Parent directories are added implicitly (0755); an explicit add_dir sets
    their mode. Adding the same path twice replaces the earlier entry.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._put(path, _Entry("file", mode, data))

    def add_file(self, path: str, source: Path, mode: int | None = None) -> None:
        """Copy a host file in; its mode is kept unless ``mode`` is given."""
        try:
            data = source.read_bytes()
            file_mode = source.stat().st_mode & 0o7777 if mode is None else mode
        except OSError as e:
            raise MicrokubeError(f"cannot read {source} for an image: {e.strerror}") from e
        self._put(path, _Entry("file", file_mode, data))

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        self._put(path, _Entry("dir", mode))

    def add_symlink(self, path: str, target: str) -> None:
        self._put(path, _Entry("symlink", 0o777, target=target))

    def _put(self, path: str, entry: _Entry) -> None:
        name = _clean(path)
        parent = posixpath.dirname(name)
        while parent:
            existing = self._entries.get(parent)
            if existing is None:
                self._entries[parent] = _Entry("dir", 0o755)
            elif existing.kind != "dir":
                raise MicrokubeError(f"image layer path {parent!r} is not a directory")
            parent = posixpath.dirname(parent)
        self._entries[name] = entry

    def paths(self) -> list[str]:
        return sorted(self._entries)

    def tar_bytes(self) -> bytes:
        """The layer as an uncompressed tar; the same entries give the same bytes."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self._entries):
                entry = self._entries[name]
                info = _tar_info(name, entry)
                tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
        return buf.getvalue()


def _tar_info(name: str, entry: _Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = entry.mode
    if entry.kind == "file":
        info.type = tarfile.REGTYPE
        info.size = len(entry.data)
    elif entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    else:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    return info


@dataclass(frozen=True)
class ImageConfig:
    """What a container of the image runs, and with what environment."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])
    working_dir: str = "/"
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WrittenImage:
    """What was written, for progress lines and tests."""

    path: Path
    name: str
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]
    size: int


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def _gzip(data: bytes) -> bytes:
    # mtime=0 and no file name keep the gzip header, so the digest, stable.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def tag_of(name: str) -> str:
    """'microkube.local/pause:3.10' -> '3.10'."""
    last = name.rsplit("/", 1)[-1]
    if ":" not in last or "@" in last:
        raise MicrokubeError(f"image name needs a tag: {name}")
    return last.rsplit(":", 1)[1]


def build_archive(
    name: str,
    layers: list[Layer],
    config: ImageConfig,
    *,
    compress: bool = False,
    history: list[str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The archive bytes and its digests ('manifest', 'config', 'layer0'...)."""
    arch = host_architecture()
    blobs: dict[str, bytes] = {}
    layer_descs: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for layer in layers:
        raw = layer.tar_bytes()
        diff_ids.append(sha256_digest(raw))
        blob = _gzip(raw) if compress else raw
        layer_descs.append(_descriptor(MEDIA_LAYER_GZIP if compress else MEDIA_LAYER, blob))
        blobs[sha256_digest(blob)] = blob

    image_config: dict[str, Any] = {"Env": config.env, "WorkingDir": config.working_dir}
    if config.entrypoint:
        image_config["Entrypoint"] = config.entrypoint
    if config.cmd:
        image_config["Cmd"] = config.cmd
    if config.user:
        image_config["User"] = config.user
    if config.labels:
        image_config["Labels"] = config.labels
    notes = history or [f"microkube layer {i}" for i in range(len(layers))]
    if len(notes) != len(layers):
        raise MicrokubeError(f"{name}: {len(notes)} history entries for {len(layers)} layers")
    config_doc = {
        "created": EPOCH,
        "architecture": arch,
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": EPOCH, "created_by": note} for note in notes],
    }
    config_bytes = canonical_json(config_doc)
    blobs[sha256_digest(config_bytes)] = config_bytes

    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": _descriptor(MEDIA_CONFIG, config_bytes),
        "layers": layer_descs,
    }
    manifest_bytes = canonical_json(manifest)
    blobs[sha256_digest(manifest_bytes)] = manifest_bytes

    manifest_desc = _descriptor(MEDIA_MANIFEST, manifest_bytes)
    manifest_desc["platform"] = {"architecture": arch, "os": "linux"}
    manifest_desc["annotations"] = {
        ANNOTATION_CONTAINERD_NAME: name,
        ANNOTATION_REF_NAME: tag_of(name),
    }
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [manifest_desc]}

    files: dict[str, bytes] = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical_json(index),
    }
    for digest, blob in blobs.items():
        files["blobs/sha256/" + digest.removeprefix("sha256:")] = blob

    outer = Layer()
    for path, data in files.items():
        outer.add_bytes(path, data, 0o644)
    digests = {
        "manifest": manifest_desc["digest"],
        "config": sha256_digest(config_bytes),
        **{f"layer{i}": d["digest"] for i, d in enumerate(layer_descs)},
    }
    return outer.tar_bytes(), digests


def write_image(
    dest: Path,
    name: str,
    layers: list[Layer],
    config: ImageConfig,
    *,
    compress: bool = False,
    history: list[str] | None = None,
) -> WrittenImage:
    """Write the image ``name`` (full reference with tag) as an OCI archive at ``dest``."""
    data, digests = build_archive(name, layers, config, compress=compress, history=history)
    write_atomic(dest, data, 0o644)
    return WrittenImage(
        path=dest,
        name=name,
        manifest_digest=digests["manifest"],
        config_digest=digests["config"],
        layer_digests=[digests[f"layer{i}"] for i in range(len(layers))],
        size=len(data),
    )


@dataclass(frozen=True)
class ArchiveSummary:
    """The image an archive holds, as its index.json names it."""

    name: str
    manifest_digest: str


def read_archive(path: Path) -> ArchiveSummary:
    """Name and manifest digest of the single image in an OCI archive."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            member = tar.extractfile("index.json")
            if member is None:
                raise KeyError("index.json")
            index = json.loads(member.read())
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as e:
        raise MicrokubeError(f"{path} is not an OCI image archive: {e}") from e
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise MicrokubeError(f"{path}: expected one image, found {len(manifests)}")
    desc = manifests[0]
    name = (desc.get("annotations") or {}).get(ANNOTATION_CONTAINERD_NAME, "")
    if not name:
        raise MicrokubeError(f"{path}: the image has no {ANNOTATION_CONTAINERD_NAME} annotation")
    return ArchiveSummary(name=name, manifest_digest=str(desc["digest"]))
