"""Build every pod image into a directory, reusing cached archives.

An archive is cached as <cache>/images/<name>-<hash12>.tar (Paths.images_cache), where
the hash covers everything the image is made from: the recipe's inputs, its
name and tag, the machine architecture and the source of the writer and of
the recipes themselves (so editing either rebuilds). The snap's images/ then
gets a copy named <name>.tar.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from microkube.fsutil import write_atomic
from microkube.images import oci, recipes
from microkube.images.recipes import Recipe
from microkube.paths import Paths


def default_cache_dir() -> Path:
    """Where archives are cached unless a caller says otherwise (Paths.images_cache)."""
    return Paths.from_env().images_cache


def recipe_hash(recipe: Recipe) -> str:
    """The hex sha256 of everything the recipe's image is made from."""
    h = hashlib.sha256()

    def feed(label: str, data: bytes) -> None:
        # Length-prefixed so no two different input lists hash alike.
        for part in (label.encode(), data):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)

    feed("recipe", f"{recipe.name}:{recipe.tag}".encode())
    feed("arch", oci.host_architecture().encode())
    # The recipe's own module too (addon recipes live in addon_recipes.py).
    for module in dict.fromkeys((oci, recipes, sys.modules[type(recipe).__module__])):
        feed(f"module:{module.__name__}", Path(str(module.__file__)).read_bytes())
    for label, data in recipe.inputs():
        feed(f"input:{label}", data)
    return h.hexdigest()


def _human(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 1024 * 1024 else f"{size / 1048576:.1f} MiB"


def build_image(
    recipe: Recipe,
    out_dir: Path,
    cache_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Build one recipe (or take it from the cache) into ``out_dir/<name>.tar``."""
    cache_dir = cache_dir or default_cache_dir()
    key = recipe_hash(recipe)[:12]
    cached = cache_dir / f"{recipe.name}-{key}.tar"
    if cached.exists():
        digest = oci.read_archive(cached).manifest_digest
        echo(f"image {recipe.ref}: cached {digest} ({_human(cached.stat().st_size)})")
    else:
        echo(f"image {recipe.ref}: building ...")
        with tempfile.TemporaryDirectory(prefix=f"microkube-image-{recipe.name}-") as tmp:
            assembled = recipe.assemble(Path(tmp))
        written = oci.write_image(
            cached, recipe.ref, assembled.layers, assembled.config, history=assembled.history
        )
        echo(f"image {recipe.ref}: built {written.manifest_digest} ({_human(written.size)})")
    dest = out_dir / f"{recipe.name}.tar"
    write_atomic(dest, cached.read_bytes(), 0o644)
    return dest


def build_images(
    out_dir: Path, cache_dir: Path | None = None, echo: Callable[[str], None] = print
) -> list[Path]:
    """Build every image microkube ships into ``out_dir``; returns the archive paths."""
    archives = [build_image(r, out_dir, cache_dir, echo) for r in recipes.all_recipes()]
    # images/ sits beside bin/ in the snap tree, where the addon binaries are installed.
    return archives + build_addon_images(out_dir / "addons", out_dir.parent / "bin", cache_dir,
                                         echo)


def build_addon_images(
    out_dir: Path, bin_dir: Path, cache_dir: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[Path]:
    """The addons' images (imported on enable) into ``out_dir``.

    One that cannot be built (its component not built yet) is reported and
    skipped, so the node's own images never wait for an addon's.
    """
    from microkube.errors import MicrokubeError
    from microkube.images.addon_recipes import addon_recipes

    built = []
    for recipe in addon_recipes(bin_dir, echo):
        try:
            built.append(build_image(recipe, out_dir, cache_dir, echo))
        except MicrokubeError as e:
            echo(f"image {recipe.ref}: NOT built: {e}")
    return built
