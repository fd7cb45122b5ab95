"""Forgetting a cluster (after leave, or a crashed join): everything that ties the node to it
goes, argument files stay, and the node counts as never set up."""

from __future__ import annotations

from pathlib import Path

from microkube.datastore.membership import cache_file
from microkube.node.guard import is_set_up
from microkube.node.reset import forget_cluster
from tests.clusternode import prepare_node_root


def test_forget_cluster_leaves_a_node_that_was_never_set_up(tmp_path: Path) -> None:
    paths = prepare_node_root(tmp_path / "root")
    for f in (paths.cluster_agents_file, paths.join_marker, cache_file(paths),
              paths.datastore_dir / "member" / "wal", paths.flannel_subnet_file):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    assert is_set_up(paths) and paths.pki.ca.cert.exists()
    args = sorted(p.name for p in paths.args_dir.iterdir())
    lines: list[str] = []
    forget_cluster(paths, lines.append)
    assert not is_set_up(paths)
    for gone in (paths.state_file, paths.certs_dir, paths.credentials_dir, paths.datastore_dir,
                 paths.cluster_agents_file, paths.join_marker, cache_file(paths),
                 paths.flannel_subnet_file):
        assert not gone.exists(), gone
    assert sorted(p.name for p in paths.args_dir.iterdir()) == args
