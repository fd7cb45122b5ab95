from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testnode import TestNode, components_built


def _require_root_and_components() -> None:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    if not components_built():
        pytest.skip("components are not built; run 'make components'")


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    """One real node shared by the end-to-end tests, torn down by pid at the end."""
    _require_root_and_components()
    root = Path(tmp_path_factory.mktemp("node")) / "root"
    n = TestNode(name="mk-e2e", root=root, ip="10.213.0.2", netns=f"mk-e2e-{os.getpid()}")
    n.create_netns()
    try:
        n.start()
        yield n
    finally:
        n.destroy()
