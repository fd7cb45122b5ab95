"""Whether a running node's external database answers: for ``status`` and the agent's log.

A PostgreSQL or MySQL server that goes away while the node runs leaves kine
serving its port and the API server failing its readiness check, which alone
says nothing about why. :func:`problem` names it in one line, from one TCP
connection to the database (bounded by a timeout, so ``status`` stays fast);
:class:`Watch` logs that line when it appears and when the database answers
again (the cluster agent runs one on such a node).
"""

from __future__ import annotations

import logging
import socket

from microkube.datastore import settings
from microkube.datastore.settings import Datastore

log = logging.getLogger("microkube.datastore.health")

# Seconds a connection to the database may take before it counts as unreachable.
PROBE_TIMEOUT = 1.0


def problem(store: Datastore, timeout: float = PROBE_TIMEOUT) -> str | None:
    """"datastore <masked URL> unreachable: <why>" if ``store``'s database takes no TCP
    connection within ``timeout`` s; None if it does, or ``store`` is no external SQL database."""
    if store.kind not in (settings.POSTGRES, settings.MYSQL):
        return None
    host, port = settings.address(store)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except TimeoutError:
        why = f"no answer within {timeout:g} s"
    except OSError as e:
        why = (e.strerror or str(e)).lower()
    else:
        return None
    return f"datastore {store.display()} unreachable: {why}"


class Watch:
    """Logs when the store's database stops answering, and when it answers again."""

    def __init__(self, store: Datastore) -> None:
        self.store = store
        self.last: str | None = None

    def step(self) -> None:
        """One look (at most PROBE_TIMEOUT s); a line in the log only when the answer changed."""
        now = problem(self.store)
        if now == self.last:
            return
        if now is not None:
            log.error("%s; the API server cannot read or write objects until it answers", now)
        elif self.last is not None:
            log.info("datastore %s answers again", self.store.display())
        self.last = now
