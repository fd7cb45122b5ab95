"""The version skew policy a joiner is held to (upstream's version-skew-policy page)."""

from __future__ import annotations

import pytest

from microkube.cluster.skew import minor_of, refusal

CLUSTER = "v1.36.3"


@pytest.mark.parametrize("joiner", ["v1.36.3", "v1.36.0", "v1.35.9", "v1.37.1", "1.36.3"])
def test_a_control_plane_within_one_minor_joins(joiner: str) -> None:
    assert refusal("control-plane", joiner, CLUSTER) is None


@pytest.mark.parametrize("joiner", ["v1.34.2", "v1.38.0"])
def test_a_control_plane_two_minors_apart_is_refused(joiner: str) -> None:
    why = refusal("control-plane", joiner, CLUSTER)
    assert why is not None and "at most 1 minor version apart" in why and joiner in why


@pytest.mark.parametrize("joiner", ["v1.36.3", "v1.35.0", "v1.33.7"])
def test_a_worker_up_to_three_minors_older_joins(joiner: str) -> None:
    assert refusal("worker", joiner, CLUSTER) is None


def test_a_worker_newer_than_the_api_server_is_refused() -> None:
    why = refusal("worker", "v1.37.0", CLUSTER)
    assert why is not None and "may not be newer" in why


def test_a_worker_four_minors_older_is_refused() -> None:
    why = refusal("worker", "v1.32.9", CLUSTER)
    assert why is not None and "at most 3 minor versions older" in why


def test_another_major_and_garbage_are_refused() -> None:
    assert "another major version" in (refusal("worker", "v2.36.0", CLUSTER) or "")
    assert "is not a version" in (refusal("worker", "latest", CLUSTER) or "")


def test_a_cluster_that_cannot_tell_its_version_refuses_nothing() -> None:
    assert refusal("worker", "v1.36.3", "unknown") is None


def test_minor_of_reads_pre_releases_and_builds() -> None:
    assert minor_of("v1.36.0-rc.1") == (1, 36) and minor_of("v1.36.3+k3s1") == (1, 36)
    assert minor_of("v1.36") is None
