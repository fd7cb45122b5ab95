"""Whether etcd's voters have a quorum, found out without needing one.

Listing the members is a linearizable read, which itself needs a quorum: a
control plane whose peers are gone could not even ask. So this module starts
from the member list the node saw last (``var/etcd-members.json``, kept fresh by
the HA reconciler, see datastore/membership.py) and probes every voter's client
URL at once, each with a short timeout. A voter that answers is up: its process
runs and will vote. The probe asks ``/version``, which etcd answers from the member
alone; ``/health`` would wait on a linearizable read while the member still believes
in a leader that is gone, and a live member would look dead. Raft commits with more
than half of the voters (quorum = n/2 + 1, etcd's ``server/etcdserver/api/membership``),
so with fewer up the API server can neither write nor read linearizably.

:func:`assess` is the pure rule; :func:`probe` asks the network.
"""

from __future__ import annotations

import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from microkube.datastore.membership import Member, load_cache, voters
from microkube.paths import Paths

# Seconds one voter's /health may take: short, so `status` answers within a second even
# when the peers' machines are gone (a dead address times out rather than refuses).
PROBE_TIMEOUT = 0.5


@dataclass(frozen=True)
class Quorum:
    """The voters by name (sorted) and the ones that did not answer."""

    voters: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def answering(self) -> tuple[str, ...]:
        """The voters that answered, sorted."""
        return tuple(v for v in self.voters if v not in self.missing)

    @property
    def needed(self) -> int:
        """How many voters must be up for a quorum: more than half."""
        return len(self.voters) // 2 + 1

    @property
    def ok(self) -> bool:
        """True when enough voters are up to commit writes."""
        return len(self.answering) >= self.needed

    def summary(self) -> str:
        """Who answers, e.g. ``1 of 3 datastore voters answer (missing: b, c)``."""
        missing = f" (missing: {', '.join(self.missing)})" if self.missing else ""
        return f"{len(self.answering)} of {len(self.voters)} datastore voters answer{missing}"

    def line(self) -> str:
        """One line for ``status``, e.g. ``no quorum: 1 of 3 datastore voters answer (missing:
        b, c); the API refuses writes until 1 more is back``."""
        if self.ok:
            return f"datastore quorum: {self.summary()}"
        short = self.needed - len(self.answering)
        return (f"no quorum: {self.summary()}; the API refuses writes until {short} more "
                f"{'is' if short == 1 else 'are'} back")

    def record(self) -> dict[str, object]:
        """The ``status --format yaml`` form: plain builtins."""
        return {"ok": self.ok, "voters": len(self.voters), "needed": self.needed,
                "answering": list(self.answering), "missing": list(self.missing)}


def assess(voter_names: Collection[str], answering: Collection[str]) -> Quorum:
    """The quorum of ``voter_names`` when those in ``answering`` are up (others are ignored)."""
    names = tuple(sorted(set(voter_names)))
    return Quorum(names, tuple(n for n in names if n not in answering))


def _answers(url: str, context: ssl.SSLContext, timeout: float) -> bool:
    """True when etcd at client URL ``url`` answers /version (any HTTP status) over TLS."""
    from microkube.probes import http_get

    return http_get(url.rstrip("/") + "/version", context=context, timeout=timeout)[0] != 0


def probe(paths: Paths, members: Sequence[Member] | None = None,
          timeout: float = PROBE_TIMEOUT) -> Quorum | None:
    """Probe every voter of ``members`` (default: the cached list) in parallel.

    Returns None when no list is known or it has a single voter (a lone node's etcd is
    either up or down; there is no quorum to speak of). Takes at most about ``timeout``
    seconds. Uses the API server's etcd client certificate.
    """
    found = voters(load_cache(paths) if members is None else members)
    if len(found) < 2:
        return None
    from concurrent.futures import ThreadPoolExecutor  # here: a lone voter's status skips it

    from microkube.probes import tls_context

    pki = paths.pki
    context = tls_context(pki.etcd_ca.cert, pki.etcd_apiserver_client.cert,
                          pki.etcd_apiserver_client.key)
    with ThreadPoolExecutor(max_workers=len(found)) as pool:
        up = list(pool.map(lambda m: bool(m.client_urls) and _answers(
            m.client_urls[0], context, timeout), found))
    return assess([m.label for m in found], [m.label for m, ok in zip(found, up, strict=True) if ok])
