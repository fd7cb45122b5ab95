"""A network namespace of the test's own for a snap's node: loopback and a veth pair.

The namespace's default route leads into the pair's other end, which is in the
namespace too: nothing sent from it leaves the machine.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def network_namespace(name: str, ip: str) -> Iterator[str]:
    """Make namespace ``name`` with ``ip``/24 on its link mk0 and a default route; yields
    the name and deletes the namespace afterwards. Raises CalledProcessError from ip."""
    _sh("ip", "netns", "add", name)
    try:
        ns = ["ip", "-n", name]
        _sh(*ns, "link", "set", "lo", "up")
        _sh(*ns, "link", "add", "mk0", "type", "veth", "peer", "name", "mk0p")
        _sh(*ns, "addr", "add", f"{ip}/24", "dev", "mk0")
        _sh(*ns, "link", "set", "mk0p", "up")
        _sh(*ns, "link", "set", "mk0", "up")
        _sh(*ns, "route", "add", "default", "dev", "mk0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
