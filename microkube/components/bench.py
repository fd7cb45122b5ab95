"""Build-time and size figures of the components, for ``make bench``.

A cold build takes many minutes, so bench does not redo one: the cold time of
each component is the one recorded in its cache entry when it was built. The
warm time is measured now, by running the (cached) build again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from microkube.components.build import Builder, BuildResult


def summarize(results: Sequence[BuildResult]) -> dict[str, Any]:
    """Per component: cold and this run's time, binary sizes; and the totals."""
    comps: dict[str, Any] = {}
    for r in results:
        meta = r.entry.meta
        sizes = {name: (r.entry.bin_dir / name).stat().st_size for name in meta["binaries"]}
        comps[r.component.name] = {
            "version": r.component.version,
            "cold_seconds": meta.get("cold_seconds"),
            "warm_seconds": round(r.seconds, 3) if r.cached else None,
            "cached": r.cached,
            "binaries_bytes": sizes,
            "size_bytes": sum(sizes.values()),
        }
    return {
        "components": comps,
        "cold_total_seconds": round(sum(c["cold_seconds"] or 0 for c in comps.values()), 1),
        "warm_total_seconds": round(sum(c["warm_seconds"] or 0 for c in comps.values()), 3),
        "total_size_bytes": sum(c["size_bytes"] for c in comps.values()),
    }


def bench(builder: Builder | None = None) -> dict[str, Any]:
    """Run the component build (warm when everything is cached) and summarize it.

    A component that was not cached is built now; its ``warm_seconds`` is then
    None and its ``cold_seconds`` is this run's build.
    """
    if builder is None:
        from microkube.components.manifest import load

        builder = Builder(load(), echo=lambda *a, **k: None)
    return summarize(builder.build())
