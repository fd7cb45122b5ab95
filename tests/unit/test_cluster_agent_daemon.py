"""The cluster agent's daemon type: the environment it runs with."""

from __future__ import annotations

import logging

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


def _filtered(exc: BaseException) -> logging.LogRecord:
    from microkube.cluster.agent import _OneLineErrors

    record = logging.LogRecord("microkube.cluster.agent.http", logging.ERROR, __file__, 1,
                               "Error handling request from %s", ("127.0.0.1",),
                               (type(exc), exc, None))
    assert _OneLineErrors().filter(record)
    return record


def test_a_clients_malformed_request_is_one_warning_line_and_our_faults_stay_errors() -> None:
    from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

    bad = _filtered(BadHttpMessage("Invalid header value char"))
    assert (bad.levelname, bad.exc_info) == ("WARNING", None)
    assert bad.getMessage() == ("Error handling request from 127.0.0.1: BadHttpMessage: "
                                "400, message: Invalid header value char")
    long = _filtered(LineTooLong(b"x" * 8000, "8190")).getMessage()
    assert "\n" not in long and len(long) < 400
    ours = _filtered(RuntimeError("a bug of ours"))
    assert ours.levelno == logging.ERROR
    assert ours.getMessage().endswith("RuntimeError: a bug of ours")
