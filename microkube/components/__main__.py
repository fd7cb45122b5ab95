"""``python -m microkube.components``: build the components, then the pod images
(``make components``).

This program sits above both ``microkube.components`` and ``microkube.images``
(the images are made from the installed components); no module imports it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from microkube.errors import report_errors

if TYPE_CHECKING:
    from microkube.paths import Paths


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m microkube.components")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the pinned components and install them")
    b.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="build only this component (repeatable); skips the images")
    b.add_argument("--snap-dir", type=Path, help="install into this tree (default: build/snap)")
    b.add_argument("--no-images", action="store_true", help="do not build the pod images")
    b.add_argument("--bench-json", type=Path, metavar="FILE",
                   help="also write build times and binary sizes to FILE as JSON")
    sub.add_parser("list", help="print the pinned components and versions")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return report_errors(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    from microkube.components import manifest

    mf = manifest.load()
    if args.command == "list":
        for c in mf.components:
            print(f"{c.name} {c.module} {c.version}")
        return 0

    from microkube.components.bench import summarize
    from microkube.components.build import Builder, with_snap
    from microkube.fsutil import write_atomic
    from microkube.paths import Paths

    paths = with_snap(Paths.from_env(), args.snap_dir)
    results = Builder(mf, paths).build(args.only)
    if not args.only and not args.no_images:
        _build_images(paths)
    if args.bench_json:
        write_atomic(args.bench_json, json.dumps(summarize(results), indent=2) + "\n")
    return 0


def _build_images(paths: Paths) -> None:
    from microkube.images.build import build_images

    print("images: building...", flush=True)
    start = time.monotonic()
    archives = build_images(paths.images_dir, paths.images_cache)
    print(f"images: {len(archives)} archive(s) in {time.monotonic() - start:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
