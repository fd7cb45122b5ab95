from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testnode import TestNode, require_root_and_node_built


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    """One real node shared by the tests of a module, torn down by pid when the module is done.

    Module scope, not session: a node left running through the later modules (tests/snap,
    tests/unit) would load the machine under every test that comes after it.
    """
    require_root_and_node_built()
    root = Path(tmp_path_factory.mktemp("node")) / "root"
    n = TestNode(name="mk-e2e", root=root, ip="10.213.0.2", netns=f"mk-e2e-{os.getpid()}")
    n.create_netns()
    try:
        n.start()
        yield n
    finally:
        n.destroy()
