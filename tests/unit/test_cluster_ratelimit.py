"""The per-source limit on refused tokens."""

from __future__ import annotations

import pytest

from microkube.cluster.ratelimit import FailureLimiter, source_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_source_is_limited_after_its_failures_and_others_are_not() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=5, window=60, clock=clock)
    for _ in range(5):
        assert limiter.retry_after("192.0.2.1") is None
        limiter.failed("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == pytest.approx(60)
    assert limiter.retry_after("192.0.2.2") is None


def test_the_window_slides() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=10, clock=clock)
    for step in (0, 4, 8):
        clock.now = 100 + step
        limiter.failed("a")
    clock.now = 109
    assert limiter.retry_after("a") == pytest.approx(1)
    clock.now = 110  # the first failure left the window
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(4)


def test_failures_while_limited_keep_it_limited_no_longer_than_the_window() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=2, window=10, clock=clock)
    for _ in range(20):
        limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(10)
    clock.now += 10
    assert limiter.retry_after("a") is None


def test_ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_key("fe80::1%eth0") == "fe80::/64"
    assert source_key("not-an-ip") == "not-an-ip"
    limiter = FailureLimiter(limit=1, window=10, clock=Clock())
    limiter.failed("2001:db8:1:2::1")
    assert limiter.retry_after("2001:db8:1:2::abcd") is not None


def test_memory_is_bounded_by_forgetting_the_oldest_source() -> None:
    limiter = FailureLimiter(limit=1, window=60, max_sources=3, clock=Clock())
    for i in range(4):
        limiter.failed(f"192.0.2.{i}")
    assert limiter.retry_after("192.0.2.0") is None  # forgotten
    assert all(limiter.retry_after(f"192.0.2.{i}") is not None for i in (1, 2, 3))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FailureLimiter(limit=0)
