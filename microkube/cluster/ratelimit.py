"""A per-source limit on failed token attempts, so a token cannot be guessed.

Each source may fail ``limit`` times within a sliding ``window``; past that it
is told to wait (HTTP 429) until its oldest failure leaves the window. Other
sources are not affected. IPv6 sources count per /64, since one host usually
owns a whole /64; IPv4-mapped IPv6 addresses count as their IPv4 address.
At most ``max_sources`` sources are tracked; the least recently failing one
is forgotten first, so a flood of addresses cannot exhaust memory.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable

DEFAULT_LIMIT = 5
DEFAULT_WINDOW = 60.0
DEFAULT_MAX_SOURCES = 4096


def source_key(address: str) -> str:
    """What failures of ``address`` count against: itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureLimiter:
    """Counts failures per source; ``clock`` gives monotonic seconds."""

    def __init__(self, limit: int = DEFAULT_LIMIT, window: float = DEFAULT_WINDOW,
                 max_sources: int = DEFAULT_MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0 or max_sources < 1:
            raise ValueError("limit, window and max_sources must be positive")
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float | None:
        """Seconds ``address`` must wait before it may try again, or None if it may now."""
        key = source_key(address)
        times = self._failures.get(key)
        if times is None:
            return None
        now = self.clock()
        self._expire(times, now)
        if not times:
            del self._failures[key]
            return None
        if len(times) < self.limit:
            return None
        return max(0.0, times[0] + self.window - now)

    def failed(self, address: str) -> None:
        """Record one failed attempt by ``address``."""
        key = source_key(address)
        now = self.clock()
        times = self._failures.pop(key, None) or deque()
        self._expire(times, now)
        times.append(now)
        # Only the newest `limit` failures decide when the source may try again.
        while len(times) > self.limit:
            times.popleft()
        self._failures[key] = times  # most recent last
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window:
            times.popleft()
