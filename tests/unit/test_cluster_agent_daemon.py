"""The cluster agent's daemon type: the environment it runs with."""

from __future__ import annotations

from microkube.node import setup
from microkube.paths import Paths
from microkube.services.cluster_agent import MALLOC_ARENAS, ClusterAgent


def test_the_agent_gets_few_malloc_arenas_unless_the_environment_chooses(
        node_env_paths: Paths) -> None:
    ctx = setup.prepare(node_env_paths)
    env = ClusterAgent().environment(ctx)
    assert env["MALLOC_ARENA_MAX"] == MALLOC_ARENAS
    assert env["GOGC"]  # the base environment is kept
    ctx.environ["MALLOC_ARENA_MAX"] = "8"
    assert ClusterAgent().environment(ctx)["MALLOC_ARENA_MAX"] == "8"
