"""``microkube join <ip>:<port>/<token>/<fingerprint> --worker``: make this node a worker.

The order is what keeps a join safe and a failure clean:

1. Refuse, changing nothing, a node that is a worker already or that is the
   cluster's own control plane (its CA has the join string's fingerprint).
2. Fetch the CA from the agent without trusting anything, and compare its
   SHA-256 with the join string's *before* the token is sent anywhere.
3. From then on talk only over TLS that trusts that CA alone: reserve the
   token (``/v1/join/check``), send certificate requests for keys made here
   (``/v1/join/worker``), and receive the signed certificates.
4. Write the worker's settings and credentials, start its daemons, and wait
   until its Node is Ready; then spend the token (``/v1/join/complete``).

If anything fails after step 3 began, the token is released and everything
this join wrote is removed, so the node is as it was and the retry may use the
same token. The whole join is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from microkube.cluster.joinstring import JoinString
from microkube.config import node
from microkube.config.node import WORKER, NodeConfig
from microkube.errors import MicrokubeError, UsageError
from microkube.paths import Paths

Progress = Callable[[str], None]
DEFAULT_TIMEOUT = 120.0
# Seconds one request to the agent may take.
REQUEST_TIMEOUT = 15.0


class JoinError(MicrokubeError):
    """The join did not complete; the node was left as it was."""


def ca_fingerprint(ca_pem: bytes) -> str:
    """The SHA-256 of a PEM certificate's DER form, as 64 lowercase hex digits."""
    try:
        der = ssl.PEM_cert_to_DER_cert(ca_pem.decode())
    except (ValueError, UnicodeDecodeError):
        raise JoinError("the agent's CA is not a PEM certificate") from None
    return hashlib.sha256(der).hexdigest()


@dataclass
class AgentClient:
    """JSON over HTTPS to one cluster agent; ``context`` decides what the client trusts."""

    join: JoinString
    context: ssl.SSLContext
    timeout: float = REQUEST_TIMEOUT

    @classmethod
    def unverified(cls, join: JoinString, timeout: float = REQUEST_TIMEOUT) -> AgentClient:
        """A client that trusts nothing yet: only for fetching the CA, whose hash is then checked."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return cls(join, context, timeout)

    @classmethod
    def pinned(cls, join: JoinString, ca_pem: bytes, timeout: float = REQUEST_TIMEOUT) -> AgentClient:
        """A client that trusts ``ca_pem`` alone, and checks that the agent's certificate names its IP."""
        return cls(join, ssl.create_default_context(cadata=ca_pem.decode()), timeout)

    def _url(self, path: str) -> str:
        return f"https://{self.join.address}{path}"

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                body: bytes = resp.read()
                return body
        except urllib.error.HTTPError as e:
            raise JoinError(f"the cluster agent at {self.join.address} refused: "
                            f"{_error_line(e)}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise JoinError(f"cannot reach the cluster agent at {self.join.address}: "
                            f"{reason}") from None

    def get_ca(self) -> bytes:
        """The PEM CA certificate the agent serves (``GET /v1/ca``)."""
        return self._open(urllib.request.Request(self._url("/v1/ca")))

    def post(self, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        """POST ``doc`` as JSON; the JSON object answered. JoinError for a refusal (with the
        agent's one line), an unreachable agent, or an answer that is not a JSON object."""
        request = urllib.request.Request(self._url(path), data=json.dumps(doc).encode(),
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        try:
            answer = json.loads(self._open(request))
        except ValueError:
            raise JoinError(f"the cluster agent's answer to {path} is not JSON") from None
        if not isinstance(answer, dict):
            raise JoinError(f"the cluster agent's answer to {path} is not a JSON object")
        return answer


def _error_line(e: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(e.read()).get("error")
    except (ValueError, AttributeError, OSError):
        message = None
    return str(message) if message else f"HTTP {e.code}"


# --- before anything is sent -------------------------------------------------------------


def refuse_if_in_cluster(paths: Paths, join: JoinString) -> None:
    """UsageError (nothing changed) if this node is a worker already, or is the cluster's own
    control plane, or is a control plane of its own cluster (joining would discard it)."""
    if not paths.state_file.exists():
        return
    config = node.load(paths.state_file)
    if config.is_worker:
        raise UsageError(f"this node is already a worker of the cluster at {config.api_server}; "
                         "it cannot join another one")
    ca = paths.pki.ca.cert
    if ca.exists() and ca_fingerprint(ca.read_bytes()) == join.fingerprint:
        raise UsageError("this node is the control plane of that cluster: a node cannot join itself")
    raise UsageError(f"this node is set up as a control plane of a cluster of its own "
                     f"({paths.state_file} exists); joining it as a worker would discard that "
                     "cluster, so join from a node that was never started")


def source_address(join: JoinString) -> str:
    """The address this host sends from to reach the agent (no packet is sent)."""
    family = socket.AF_INET6 if join.ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((str(join.ip), join.port))
        address: str = s.getsockname()[0]
        return address


def joiner_config(join: JoinString) -> NodeConfig:
    """This node's name and address: MICROKUBE_NODE_NAME/_NODE_IP, else the host name and the
    address that reaches the agent. Raises UsageError for a name Kubernetes would refuse."""
    import os

    detected = node.detect()
    ip = os.environ.get("MICROKUBE_NODE_IP") or source_address(join)
    return NodeConfig(node_name=detected.node_name, node_ip=ip,
                      registry_mirror=detected.registry_mirror, cgroup_root=detected.cgroup_root)


def fetch_pinned_ca(join: JoinString, progress: Progress) -> bytes:
    """The agent's CA, once its SHA-256 matched the join string's; JoinError otherwise.

    The token is not sent on this connection or any other before the check passes.
    """
    progress(f"fetching the cluster CA from {join.address}")
    ca_pem = AgentClient.unverified(join).get_ca()
    found = ca_fingerprint(ca_pem)
    if found != join.fingerprint:
        raise JoinError(f"the cluster CA at {join.address} has the fingerprint {found}, not the "
                        f"join string's {join.fingerprint}; the token was not sent. Check the "
                        "address, or run 'microkube add-node' again on the control plane")
    progress("the cluster CA matches the join string's fingerprint")
    return ca_pem


# --- the join ------------------------------------------------------------------------------


@dataclass
class _Written:
    """What this join put on disk, so a failure can take it away again."""

    paths: Paths
    started: bool = False

    def undo(self) -> None:
        if self.started:
            from microkube.node.runtime import runtime_for

            with contextlib.suppress(MicrokubeError):
                runtime_for(self.paths).stop(lambda _line: None)
        with contextlib.suppress(FileNotFoundError):
            self.paths.state_file.unlink()
        for d in (self.paths.certs_dir, self.paths.credentials_dir):
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def _reserved(client: AgentClient, token: str, progress: Progress) -> Iterator[None]:
    """Release the token if the block fails, so a retry may use it."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(MicrokubeError):
            client.post("/v1/join/release", {"token": token})
            progress("the token was released; it can be used again")
        raise


def join_worker(paths: Paths, join: JoinString, progress: Progress,
                timeout: float = DEFAULT_TIMEOUT) -> NodeConfig:
    """Join this node to the cluster ``join`` names, as a worker; returns its new settings.

    ``progress`` gets a line per step; the join is bounded by ``timeout`` seconds.
    Raises UsageError for a node that may not join (nothing changed), JoinError
    when the agent refuses or cannot be reached, or the node is not Ready in time
    (then the token is released and what the join wrote is gone).
    """
    deadline = time.monotonic() + timeout
    refuse_if_in_cluster(paths, join)
    me = joiner_config(join)
    ca_pem = fetch_pinned_ca(join, progress)
    client = AgentClient.pinned(join, ca_pem)
    identity = {"token": join.token, "name": me.node_name, "ip": me.node_ip}
    client.post("/v1/join/check", {**identity, "role": WORKER})
    progress(f"the token is reserved for {me.node_name} ({me.node_ip})")
    written = _Written(paths)
    with _reserved(client, join.token, progress):
        try:
            config = _admit(paths, client, identity, me, ca_pem, progress, written)
            _wait_node_ready(paths, config, deadline, progress)
            client.post("/v1/join/complete", identity)
        except BaseException:
            written.undo()
            raise
    progress(f"{me.node_name} joined the cluster as a worker of {config.api_server}")
    return config


def _admit(paths: Paths, client: AgentClient, identity: dict[str, str], me: NodeConfig,
           ca_pem: bytes, progress: Progress, written: _Written) -> NodeConfig:
    """Get certificates for keys made here, write the worker's files and start its daemons."""
    from microkube.node.runtime import runtime_for
    from microkube.pki.worker import worker_request, write_worker_credentials

    request = worker_request(me.node_name, me.node_ip, socket.gethostname())
    progress("keys made on this node; asking the control plane to sign their certificates")
    answer = client.post("/v1/join/worker", {**identity, "csrs": request.csrs})
    try:
        cluster = dict(answer["cluster"])
        api_server = str(answer["api_server"])
        certificates = {k: str(v) for k, v in answer["certificates"].items()}
        config = NodeConfig(
            node_name=me.node_name, node_ip=me.node_ip, pod_cidr=cluster["pod_cidr"],
            service_cidr=cluster["service_cidr"], cluster_domain=cluster["cluster_domain"],
            api_port=int(cluster["api_port"]), registry_mirror=me.registry_mirror,
            cgroup_root=me.cgroup_root, role=WORKER, api_server=api_server)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise JoinError(f"the cluster agent's answer lacks what a worker needs ({e})") from None
    paths.ensure()
    write_worker_credentials(paths.pki, request, certificates, ca_pem, api_server)
    node.save(paths.state_file, config)  # last: the node counts as set up only now
    progress(f"certificates written; the API server is {api_server}")
    written.started = True
    runtime_for(paths).start(progress)
    return config


def _wait_node_ready(paths: Paths, config: NodeConfig, deadline: float,
                     progress: Progress) -> None:
    """Wait until ``status`` says the node is Ready and every daemon serves; JoinError at ``deadline``."""
    from microkube.node.status import wait_for_ready

    st = wait_for_ready(paths, max(0.0, deadline - time.monotonic()), progress)
    if not st.ready:
        raise JoinError(f"the join did not complete in time: {st.message}; the node was "
                        "stopped and its new files removed, the token released")
    progress(f"node {config.node_name} is Ready")
