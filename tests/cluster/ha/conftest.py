"""The HA tests share one three-control-plane cluster (tests/hacluster.py) for as long as
this package's tests run, in this order: the control-plane join tests watch it form and
change its membership, then the API failover tests, then the power loss tests; each of the
later modules checks (and if need be restores) the cluster's health before it uses it.
The cluster is torn down when the package's last test is done, before any other test runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hacluster import HaLab, form
from tests.multinode import cluster
from tests.testnode import require_root_and_node_built

# The modules of this package, in the order they use the shared cluster.
ORDER = ("test_control_plane_join.py", "test_api_failover.py", "test_power_loss.py")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this package's modules in ORDER (a stable sort: tests keep their order within a
    module), where the first of them was collected; every other test keeps its place."""
    ours = [i for i in items if i.path.parent == HERE and i.path.name in ORDER]
    if not ours:
        return
    first, mine = items.index(ours[0]), set(ours)
    rest = [i for i in items if i not in mine]
    ours.sort(key=lambda i: ORDER.index(i.path.name))
    items[:] = rest[:first] + ours + rest[first:]


@pytest.fixture(scope="package")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaLab]:
    """The shared cluster, formed by its first user; gone after this package's last test."""
    require_root_and_node_built()
    with cluster(Path(tmp_path_factory.mktemp("lan"))) as lan:
        yield form(lan)
