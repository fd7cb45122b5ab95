"""The cluster agent process: ``python -m microkube.cluster.agent [--port N] ...``.

It serves :mod:`microkube.cluster.api` over HTTPS with the node's
``cluster-agent.crt`` (signed by the cluster CA, naming the node's addresses)
until SIGTERM or SIGINT. Its flags come from the ``cluster-agent`` argument
file. Beside the server, a thread of its own runs the manifest deployer
(microkube.manifests.watch.Background, flags from the ``manifests`` argument file,
log in ``manifests.log``): it never blocks the server (its kubectl and helm calls
are subprocesses) and a failure of it restarts it, not the agent. Slow clients
are cut off: a TLS handshake or a request body that takes longer than
``--request-timeout`` (a body gets a 408), and a connection that sends no
complete request within ``--idle-timeout``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from microkube.cluster.api import DEFAULT_REQUEST_TIMEOUT, JoinApi
from microkube.cluster.controlplane import control_plane_of
from microkube.cluster.httpserver import JsonHttpsServer
from microkube.cluster.ratelimit import FailureLimiter
from microkube.cluster.settings import ClusterSettings
from microkube.cluster.tokens import TokenStore
from microkube.config import args, node
from microkube.datastore.settings import ETCD
from microkube.errors import MicrokubeError, UsageError, report_errors
from microkube.manifests.watch import Background, resync_interval
from microkube.paths import Paths, PkiPaths, Ports
from microkube.proc import stop_with_parent
from microkube.services.logs import rotate_if_large

log = logging.getLogger("microkube.cluster.agent")

DEFAULT_IDLE_TIMEOUT = 30.0
# Seconds open connections get to finish when the agent stops.
SHUTDOWN_GRACE = 3.0
# Seconds the deployer's pass under way gets to finish when the agent stops.
DEPLOYER_GRACE = 1.5
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


@dataclass(frozen=True)
class AgentOptions:
    """Where the agent listens and how long it waits for a client (seconds)."""

    port: int = Ports().cluster_agent
    bind_address: str | None = None  # None: every address of the node
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT


def server_tls(pki: PkiPaths) -> ssl.SSLContext:
    """A TLS server context with the agent's certificate; UsageError if the node has none.

    A client may present a certificate signed by the cluster CA (a node proving
    who it is, to leave); joiners present none.
    """
    pair = pki.cluster_agent
    if not pair.exists():
        raise UsageError(f"{pair.cert}: missing; 'microkube start' makes the node's certificates")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(pair.cert), str(pair.key))
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"{pair.cert}: cannot be loaded ({e}); "
                         "'microkube refresh-certs --cert cluster-agent.crt' re-issues it") from None
    try:
        context.load_verify_locations(cafile=str(pki.ca.cert))
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"{pki.ca.cert}: cannot be loaded ({e})") from None
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def build_api(paths: Paths, request_timeout: float) -> JoinApi:
    """The API of the node under ``paths``; UsageError if the node was never set up."""
    config = node.load(paths.state_file, paths.yaml_cache_dir)
    pki = paths.pki
    try:
        ca_pem = pki.ca.cert.read_bytes()
    except OSError as e:
        raise UsageError(f"{pki.ca.cert}: {e.strerror}; 'microkube start' makes the cluster CA") \
            from None
    return JoinApi(ca_pem, config, ClusterSettings.of(paths, config),
                   TokenStore(paths.cluster_tokens_file), FailureLimiter(),
                   request_timeout=request_timeout,
                   control_plane=control_plane_of(paths, config))


def manifest_deployer(paths: Paths, config: node.NodeConfig) -> Background:
    """The deploy folder's deployer for this node, not started, logging to its own file
    (``manifests.log``, rotated after a pass when large) rather than the agent's."""
    log_file = paths.log_file("manifests")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)  # appends: the rotation's truncation is safe
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    deployer_log = logging.getLogger("microkube.manifests")
    deployer_log.addHandler(handler)
    deployer_log.setLevel(logging.INFO)
    deployer_log.propagate = False

    def options() -> float:
        return resync_interval(args.read(paths, "manifests", config.substitutions()))

    def rotate() -> None:
        rotate_if_large(log_file)

    return Background(paths, config.node_name, options, rotate)


def run(options: AgentOptions, paths: Paths | None = None) -> None:
    """Serve this node's cluster agent, and run its manifest deployer beside it, until
    SIGTERM or SIGINT (or its parent's death).

    Raises MicrokubeError (one line) if the node was never set up or the port cannot be had.
    """
    stop_with_parent()
    paths = paths or Paths.from_env()
    api = build_api(paths, options.request_timeout)
    server = JsonHttpsServer(api.routes(), server_tls(paths.pki), options.port,
                             options.bind_address, options.request_timeout,
                             options.idle_timeout)
    deployer = manifest_deployer(paths, api.node)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    log.info("serving on %s", server.start())
    workers = [threading.Thread(target=api.undo_lapsed_joins_until, args=(stop,),
                                name="undo-lapsed-joins", daemon=True),
               threading.Thread(target=_reconcile, args=(paths, api.node.datastore, stop),
                                name="reconcile", daemon=True)]
    for worker in workers:
        worker.start()
    deployer.start()
    try:
        while not stop.wait(1.0):  # a timed wait, so the signal handler runs promptly
            pass
    finally:
        server.stop(SHUTDOWN_GRACE)
        deployer.stop(DEPLOYER_GRACE)
    log.info("stopped")


def _reconcile(paths: Paths, kind: str, stop: threading.Event) -> None:
    """A pass every INTERVAL seconds until ``stop``: on etcd, HA on its own (cluster/ha.py);
    on an external database, a line in the log when it stops or starts answering
    (datastore/health.py); nothing on SQLite or external etcd (no member is ours)."""
    from microkube.cluster.ha import INTERVAL, Reconciler
    from microkube.datastore import health, settings

    step: Callable[[], None]
    if kind == ETCD:
        step = Reconciler(paths).step
    elif kind in (settings.POSTGRES, settings.MYSQL):
        try:
            step = health.Watch(settings.load(paths, kind)).step
        except MicrokubeError as e:
            log.error("cannot watch the datastore: %s", e)
            return
    else:
        return
    while not stop.is_set():
        try:
            step()
        except Exception:
            log.exception("reconciling failed; trying again")
        stop.wait(INTERVAL)


def parse_args(argv: list[str] | None) -> AgentOptions:
    """Options from the command line (the argument file's flags)."""
    ap = argparse.ArgumentParser(prog="microkube-cluster-agent",
                                 description="Admit nodes into this microkube cluster.")
    ap.add_argument("--port", type=int, default=Ports().cluster_agent, help="the HTTPS port")
    ap.add_argument("--bind-address", default=None,
                    help="listen on this address only (default: every address)")
    ap.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT,
                    help="seconds a TLS handshake or a request body may take")
    ap.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT,
                    help="seconds a connection may stay open without a complete request")
    ns = ap.parse_args(argv)
    if not 0 <= ns.port < 65536:
        ap.error(f"--port {ns.port} is not a port number")
    if ns.request_timeout <= 0 or ns.idle_timeout <= 0:
        ap.error("timeouts must be positive")
    return AgentOptions(ns.port, ns.bind_address, ns.request_timeout, ns.idle_timeout)


def main(argv: list[str] | None = None) -> int:
    """Entry point; a user-facing error is one line and a non-zero exit."""
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
    return report_errors(lambda: run(options))


if __name__ == "__main__":
    sys.exit(main())
