"""``python -m microkube.snap``: assemble and pack the snap (``make snap``).

Also the two steps the parts themselves run: ``prune-image-inputs`` (the
components part) and ``stage-host-python`` (the local python-runtime part).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from microkube.errors import report_errors
from microkube.paths import CHECKOUT

DEFAULT_WORK = CHECKOUT / "build" / "craft"
DEFAULT_OUT = CHECKOUT / "build"
ARCH = "amd64"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m microkube.snap")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="run the parts, write meta/ and pack the snap")
    b.add_argument("--work-dir", type=Path, default=DEFAULT_WORK,
                   help="craft-parts' parts/, stage/ and prime/ (default: build/craft)")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the .snap goes")
    b.add_argument("--compression", choices=("xz", "lzo"), default="xz")
    b.add_argument("--no-pack", action="store_true", help="stop after checking the tree")
    pr = sub.add_parser("prune-image-inputs", help="drop image-only binaries from a tree")
    pr.add_argument("tree", type=Path)
    st = sub.add_parser("stage-host-python", help="copy this machine's Python into DIR/usr")
    st.add_argument("dir", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return report_errors(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "prune-image-inputs":
        from microkube.snap.tree import prune_image_inputs

        for path in prune_image_inputs(args.tree):
            print(f"removed {path} (it ships inside its addon image)")
        return 0
    if args.command == "stage-host-python":
        from microkube.snap.parts import stage_host_python

        stage_host_python(args.dir)
        return 0

    from microkube.snap import pack, parts, project

    proj = project.load()
    primed = parts.run(proj, args.work_dir)
    pack.write_meta(primed.prime_dir, proj, primed.version, ARCH)
    pack.check(primed.prime_dir)
    print(f"snap: tree ready in {primed.prime_dir} (version {primed.version})")
    if args.no_pack:
        return 0
    name = pack.snap_filename(proj, primed.version, ARCH)
    print(f"snap: packing {name} ({args.compression}; minutes on two cores)", flush=True)
    out = pack.pack(primed.prime_dir, args.out, name, args.compression)
    print(f"snap: built {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
