"""Addon image recipes and the go.mod written for upstream modules with replace directives."""

from __future__ import annotations

from pathlib import Path

import pytest

from microkube.errors import MicrokubeError
from microkube.images import gobuild
from microkube.images.addon_recipes import BinaryImage, addon_recipes
from microkube.images.oci import read_archive, write_image

UPSTREAM = """module github.com/example/app/v3

go 1.25.0

require (
\tgithub.com/abbot/go-http-auth v0.0.0-00010101000000-000000000000 // No tag on the repo.
\tgithub.com/gorilla/mux v1.8.1
)

// Forks
replace (
\tgithub.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59
)

replace github.com/one/line => github.com/one/fork v1.0.0

// a comment
exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible
"""


def test_work_gomod_repeats_upstream_replaces_and_excludes() -> None:
    text = gobuild.work_gomod("app", "github.com/example/app/v3", "v3.6.12", UPSTREAM)
    lines = text.splitlines()
    assert "module microkube.local/app" in lines
    assert "go 1.25.0" in lines
    assert "require github.com/example/app/v3 v3.6.12" in lines
    assert ("replace github.com/abbot/go-http-auth => github.com/containous/go-http-auth "
            "v0.4.1-0.20200324110947-a37a7636d23e") in lines
    assert "replace github.com/one/line => github.com/one/fork v1.0.0" in lines
    assert "exclude github.com/tencentcloud/tencentcloud-sdk-go v3.0.83+incompatible" in lines


def test_work_gomod_refuses_local_replaces() -> None:
    local = UPSTREAM + "\nreplace github.com/example/app/ext => ./pkg/ext\n"
    with pytest.raises(MicrokubeError, match=r"replaces github.com/example/app/ext with a local folder"):
        gobuild.work_gomod("app", "github.com/example/app/v3", "v3.7.0", local)


def test_recipes_name_every_addon_image(tmp_path: Path) -> None:
    names = [r.name for r in addon_recipes(tmp_path)]
    assert names == ["coredns", "traefik", "local-path-provisioner", "metrics-server", "registry",
                     "metallb-controller", "metallb-speaker", "dashboard"]
    # Every image an addon lists has a recipe.
    from microkube.addons.repository import load
    from microkube.paths import CHECKOUT

    wanted = {i for a in load(CHECKOUT / "addons", "core").addons for i in a.images}
    assert wanted == set(names)


def test_missing_binary_is_one_clear_line(tmp_path: Path) -> None:
    coredns = addon_recipes(tmp_path)[0]
    with pytest.raises(MicrokubeError, match="coredns is missing; build it with 'make components'"):
        coredns.inputs()


def test_binary_image_layout(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    recipe = BinaryImage("tool", "1.0", lambda: binary, ["/bin/tool"], cmd=["serve"],
                         dirs={"/var/lib/tool": 0o777})
    built = recipe.assemble(tmp_path)
    paths = built.layers[0].paths()
    assert {"bin/tool", "etc/passwd", "etc/group", "tmp", "var/lib/tool"} <= set(paths)
    assert built.config.user == "65534:65534"
    out = tmp_path / "tool.tar"
    write_image(out, recipe.ref, built.layers, built.config, history=built.history)
    assert read_archive(out).name == "microkube.local/tool:1.0"
