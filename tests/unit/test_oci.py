"""The OCI archive writer: layout, config, annotations, determinism; and the image cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from microkube.errors import MicrokubeError
from microkube.images import build, oci
from microkube.images.recipes import Assembled, Recipe

NAME = "microkube.local/demo:1.2"


def sample_layer(tmp_path: Path) -> oci.Layer:
    host_file = tmp_path / "tool"
    host_file.write_bytes(b"#!/bin/sh\necho tool\n")
    host_file.chmod(0o750)
    layer = oci.Layer()
    layer.add_bytes("/etc/motd", b"hello\n", 0o644)
    layer.add_file("/usr/bin/tool", host_file)
    layer.add_dir("/tmp", 0o1777)
    layer.add_symlink("/bin/sh", "/usr/bin/tool")
    return layer


def sample_config() -> oci.ImageConfig:
    return oci.ImageConfig(entrypoint=["/usr/bin/tool"], cmd=["--serve"])


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            out[m.name] = f.read() if f else b""
        return out


def blob(files: dict[str, bytes], digest: str) -> bytes:
    data = files["blobs/sha256/" + digest.removeprefix("sha256:")]
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def open_image(archive: bytes) -> tuple[dict[str, bytes], dict[str, Any], dict[str, Any], Any]:
    files = members(archive)
    index = json.loads(files["index.json"])
    desc = index["manifests"][0]
    manifest = json.loads(blob(files, desc["digest"]))
    config = json.loads(blob(files, manifest["config"]["digest"]))
    return files, index, manifest, config


def test_archive_has_an_oci_layout(tmp_path: Path) -> None:
    archive, _ = oci.build_archive(NAME, [sample_layer(tmp_path)], sample_config())
    files, index, manifest, _ = open_image(archive)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == oci.MEDIA_INDEX
    assert len(index["manifests"]) == 1
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == oci.MEDIA_CONFIG
    for desc in [manifest["config"], *manifest["layers"], index["manifests"][0]]:
        assert len(blob(files, desc["digest"])) == desc["size"]
    blob_names = [n for n in files if n.startswith("blobs/sha256/") and files[n]]
    assert len(blob_names) == 3  # manifest, config, one layer


def test_manifest_is_annotated_with_its_name(tmp_path: Path) -> None:
    archive, digests = oci.build_archive(NAME, [sample_layer(tmp_path)], sample_config())
    _, index, _, _ = open_image(archive)
    desc = index["manifests"][0]
    assert desc["annotations"] == {
        "io.containerd.image.name": NAME,
        "org.opencontainers.image.ref.name": "1.2",
    }
    assert desc["platform"] == {"architecture": oci.host_architecture(), "os": "linux"}
    assert desc["digest"] == digests["manifest"]


def test_config_fields(tmp_path: Path) -> None:
    archive, _ = oci.build_archive(NAME, [sample_layer(tmp_path)], sample_config())
    files, _, manifest, config = open_image(archive)
    assert config["os"] == "linux"
    assert config["architecture"] == oci.host_architecture()
    assert config["config"]["Entrypoint"] == ["/usr/bin/tool"]
    assert config["config"]["Cmd"] == ["--serve"]
    assert config["config"]["Env"] == [f"PATH={oci.DEFAULT_PATH}"]
    layer_blob = blob(files, manifest["layers"][0]["digest"])
    assert manifest["layers"][0]["mediaType"] == oci.MEDIA_LAYER
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": ["sha256:" + hashlib.sha256(layer_blob).hexdigest()],
    }
    assert len(config["history"]) == 1


def test_entrypoint_is_left_out_when_empty(tmp_path: Path) -> None:
    archive, _ = oci.build_archive(NAME, [sample_layer(tmp_path)], oci.ImageConfig(cmd=["/bin/sh"]))
    config = open_image(archive)[3]["config"]
    assert "Entrypoint" not in config
    assert config["Cmd"] == ["/bin/sh"]


def test_gzip_layers_keep_the_uncompressed_diff_id(tmp_path: Path) -> None:
    layer = sample_layer(tmp_path)
    archive, _ = oci.build_archive(NAME, [layer], sample_config(), compress=True)
    files, _, manifest, config = open_image(archive)
    assert manifest["layers"][0]["mediaType"] == oci.MEDIA_LAYER_GZIP
    raw = gzip.decompress(blob(files, manifest["layers"][0]["digest"]))
    assert raw == layer.tar_bytes()
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]


def test_layer_entries(tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(sample_layer(tmp_path).tar_bytes())) as tar:
        entries = {m.name: m for m in tar.getmembers()}
        names = [m.name for m in tar.getmembers()]
    assert names == sorted(names)
    assert names == ["bin", "bin/sh", "etc", "etc/motd", "tmp", "usr", "usr/bin", "usr/bin/tool"]
    for m in entries.values():
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    assert entries["usr"].isdir() and entries["usr"].mode == 0o755  # implicit parent
    assert entries["tmp"].mode == 0o1777
    assert entries["usr/bin/tool"].mode == 0o750  # kept from the host file
    assert entries["etc/motd"].size == len(b"hello\n")
    assert entries["bin/sh"].issym() and entries["bin/sh"].linkname == "/usr/bin/tool"


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first, d1 = oci.build_archive(NAME, [sample_layer(tmp_path)], sample_config())
    second, d2 = oci.build_archive(NAME, [sample_layer(tmp_path)], sample_config())
    assert first == second
    assert d1 == d2


def test_insertion_order_does_not_matter() -> None:
    a, b = oci.Layer(), oci.Layer()
    a.add_bytes("/x/one", b"1")
    a.add_bytes("/y/two", b"2")
    b.add_bytes("/y/two", b"2")
    b.add_bytes("/x/one", b"1")
    assert a.tar_bytes() == b.tar_bytes()


def test_written_archive_matches_and_reads_back(tmp_path: Path) -> None:
    written = oci.write_image(
        tmp_path / "out" / "demo.tar", NAME, [sample_layer(tmp_path)], sample_config()
    )
    data = written.path.read_bytes()
    assert len(data) == written.size
    _, _, manifest, _ = open_image(data)
    assert [layer["digest"] for layer in manifest["layers"]] == written.layer_digests
    summary = oci.read_archive(written.path)
    assert summary == oci.ArchiveSummary(NAME, written.manifest_digest)


@pytest.mark.parametrize("path", ["", "/", "../etc", "/a/\0b"])
def test_bad_layer_paths_are_refused(path: str) -> None:
    with pytest.raises(MicrokubeError):
        oci.Layer().add_bytes(path, b"")


def test_a_file_cannot_be_a_parent() -> None:
    layer = oci.Layer()
    layer.add_bytes("/etc", b"")
    with pytest.raises(MicrokubeError, match="not a directory"):
        layer.add_bytes("/etc/passwd", b"")


def test_name_without_tag_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MicrokubeError, match="needs a tag"):
        oci.build_archive("microkube.local/demo", [sample_layer(tmp_path)], sample_config())
    assert oci.tag_of("localhost:5000/a/b:v1") == "v1"


def test_not_an_archive_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.tar"
    bogus.write_bytes(b"nope")
    with pytest.raises(MicrokubeError, match="not an OCI image archive"):
        oci.read_archive(bogus)


class CountingRecipe(Recipe):
    """A recipe of pure data, counting how often it is assembled."""

    name = "demo"
    tag = "1.2"

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.assembled = 0

    def inputs(self) -> list[tuple[str, bytes]]:
        return [("content", self.content)]

    def assemble(self, workdir: Path) -> Assembled:
        self.assembled += 1
        layer = oci.Layer()
        layer.add_bytes("/data", self.content)
        return Assembled([layer], oci.ImageConfig(cmd=["/data"]), ["demo"])


def test_recipe_hash_follows_the_inputs() -> None:
    assert build.recipe_hash(CountingRecipe(b"a")) == build.recipe_hash(CountingRecipe(b"a"))
    assert build.recipe_hash(CountingRecipe(b"a")) != build.recipe_hash(CountingRecipe(b"b"))


def test_build_uses_the_cache(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    lines: list[str] = []
    recipe = CountingRecipe(b"a")
    first = build.build_image(recipe, out, cache, lines.append)
    second = build.build_image(recipe, out, cache, lines.append)
    assert recipe.assembled == 1
    assert first == second == out / "demo.tar"
    key = build.recipe_hash(recipe)[:12]
    assert (cache / f"demo-{key}.tar").read_bytes() == first.read_bytes()
    assert "building" in lines[0] and "cached" in lines[-1]
    assert oci.read_archive(first).name == "microkube.local/demo:1.2"
    changed = CountingRecipe(b"b")
    build.build_image(changed, out, cache, lines.append)
    assert changed.assembled == 1
    assert len(list(cache.iterdir())) == 2
