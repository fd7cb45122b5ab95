"""A/B of daemon flags on a node's idle memory or time to Ready: ``python -m tests.bench_flags``.

Each variant is a set of flag edits to a fresh node's argument files (made before its
first start, so the defaults are installed around them). The variants run interleaved,
``--starts`` rounds of one cold node each, so a drift in the machine's load hits every
variant alike; each node is measured as ``make bench`` does (tests/bench_memory.py,
IDLE_SETTLE_SECONDS after Ready), or with ``--ready`` only timed to Node Ready as
``make bench`` times a cold start (tests/bench.py ``timed_start``), and the medians are
printed. Run as root after
``make components``, under the e2e lock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from microkube.config import args as argfiles
from microkube.paths import Paths
from tests.bench import timed_start
from tests.bench_memory import idle_memory
from tests.testnode import TestNode, components_built

# One edit: DAEMON:NAME=VALUE sets --NAME in DAEMON's file; DAEMON:-NAME removes it;
# env:NAME=VALUE sets an environment variable of the node's supervisor (and so of every
# daemon that does not set its own, e.g. GOGC).
Edit = tuple[str, str, str | None]
ENV = "env"


def parse_variant(text: str) -> tuple[str, list[Edit]]:
    """``label[=DAEMON:NAME=VALUE;DAEMON:-NAME;...]`` -> (label, edits).

    Raises ValueError on an edit that names no daemon argument file microkube ships.
    """
    label, _, rest = text.partition("=")
    edits: list[Edit] = []
    for item in filter(None, rest.split(";")):
        daemon, _, flag = item.partition(":")
        if daemon not in (*argfiles.DAEMONS, ENV) or not flag or (
                daemon == ENV and "=" not in flag):
            raise ValueError(f"'{item}': expected DAEMON:NAME=VALUE, DAEMON:-NAME or "
                             "env:NAME=VALUE")
        if flag.startswith("-"):
            edits.append((daemon, flag[1:], None))
        else:
            name, _, value = flag.partition("=")
            edits.append((daemon, name, value))
    return label, edits


def measure(label: str, edits: list[Edit], base: Path, run: int,
            out_dir: Path, ready_only: bool = False) -> dict[str, Any]:
    """Start one fresh node with ``edits`` applied to its argument files and return
    tests/bench_memory.idle_memory() of it with its start's timeline under "timeline"
    (event -> seconds, "all serving" the seconds until ``start`` returned), or with
    ``ready_only`` the timeline alone; the node is destroyed afterwards. With
    ``kube-apiserver:profiling=true`` among the edits, kubelite's heap profile is written to
    ``out_dir``/heap-LABELRUN.pb.gz (read it with ``go tool pprof``)."""
    tag = f"{label}{run}"
    node = TestNode(name=f"mk-ab-{tag}", root=base / tag / "root", ip="10.214.0.2",
                    netns=f"mk-ab-{os.getpid()}-{tag}"[:15],
                    extra_env={n: v for d, n, v in edits if d == ENV and v is not None})
    paths = Paths.from_env(node.env)
    paths.args_dir.mkdir(parents=True, exist_ok=True)
    argfiles.install_defaults(paths)
    for daemon, name, value in edits:
        if daemon != ENV:
            argfiles.set_flag(paths, daemon, name, value)
    node.create_netns()
    try:
        timeline, all_serving = timed_start(node)
        timeline = {**timeline, "all serving": round(all_serving, 2)}
        if ready_only:
            return timeline
        figures = {**idle_memory(node), "timeline": timeline}
        if ("kube-apiserver", "profiling", "true") in edits:
            # kubelite is one process: the API server's heap profile covers every part.
            out = out_dir / f"heap-{tag}.pb.gz"
            proc = subprocess.run(node.in_netns([*node.cli, "kubectl", "get", "--raw",
                                                 "/debug/pprof/heap"]),
                                  env=node.env, capture_output=True, timeout=60)
            out.write_bytes(proc.stdout)
            print(f"  heap profile in {out}", flush=True)
        return figures
    finally:
        node.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--variant", action="append", required=True,
                    help="label[=DAEMON:NAME=VALUE;DAEMON:-NAME...] (repeatable; 'base' alone "
                         "is the shipped defaults)")
    ap.add_argument("--starts", type=int, default=3, help="rounds (one node per variant each)")
    ap.add_argument("--json", type=Path, default=Path("bench-flags.json"))
    ap.add_argument("--ready", action="store_true",
                    help="time each start to Node Ready instead of measuring idle memory")
    opts = ap.parse_args()
    try:
        variants = [parse_variant(v) for v in opts.variant]
    except ValueError as e:
        ap.error(str(e))
    if os.geteuid() != 0 or not components_built():
        print("bench_flags needs root and built components ('make components')", file=sys.stderr)
        return 2
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in variants}
    with tempfile.TemporaryDirectory(prefix="mk-ab-") as tmp:
        for i in range(opts.starts):
            for label, edits in variants:
                print(f"round {i + 1}: {label}", flush=True)
                try:
                    fig = measure(label, edits, Path(tmp), i, opts.json.parent, opts.ready)
                except AssertionError as e:  # the node never became Ready: a result too
                    print(f"  {label} failed: {str(e).splitlines()[-1]}", flush=True)
                    continue
                runs[label].append(fig)
                if opts.ready:
                    print(f"  Node Ready {fig.get('Node Ready')} s, all serving "
                          f"{fig['all serving']} s", flush=True)
                    continue
                k = fig["processes"].get("kubelite", {})
                print(f"  kubelite pss {k.get('pss_mb')} anon {k.get('pss_anon_mb')} "
                      f"total pss {fig['total_pss_mb']}; Node Ready "
                      f"{fig['timeline'].get('Node Ready')} s", flush=True)
    opts.json.write_text(json.dumps(runs, indent=1) + "\n")
    if opts.ready:
        print_ready_medians(runs)
        return 0
    print(f"{'variant':<24} {'kubelite PSS':>13} {'anon':>7} {'total PSS':>10}  (medians, MB)"
          "  Node Ready (median, s)")
    for label, figs in runs.items():
        if not figs:
            print(f"{label:<24} (no node became Ready)")
            continue
        kl = [f["processes"].get("kubelite", {}) for f in figs]
        print(f"{label:<24} {statistics.median(k.get('pss_mb', 0) for k in kl):>13.1f} "
              f"{statistics.median(k.get('pss_anon_mb', 0) for k in kl):>7.1f} "
              f"{statistics.median(f['total_pss_mb'] for f in figs):>10.1f}"
              f"  {statistics.median(f['timeline'].get('Node Ready', 0) for f in figs):.2f}")
    return 0


def print_ready_medians(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Print each variant's median seconds to each event of a start's timeline."""
    events = sorted({e for figs in runs.values() for f in figs for e in f},
                    key=lambda e: statistics.median(
                        f[e] for figs in runs.values() for f in figs if e in f))
    print(f"{'event (median s)':<24}" + "".join(f"{label:>12}" for label in runs))
    for event in events:
        cells = [[f[event] for f in figs if event in f] for figs in runs.values()]
        print(f"{event:<24}" + "".join(
            f"{statistics.median(c):>12.2f}" if c else f"{'-':>12}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
