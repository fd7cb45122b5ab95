"""``python -m microkube.components``: build the components (``make components``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from microkube.errors import report_errors


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
    from microkube.components.build import Builder, build_images, with_snap
    from microkube.fsutil import write_atomic
    from microkube.paths import Paths

    paths = with_snap(Paths.from_env(), args.snap_dir)
    results = Builder(mf, paths).build(args.only)
    if not args.only and not args.no_images:
        build_images(paths)
    if args.bench_json:
        write_atomic(args.bench_json, json.dumps(summarize(results), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
