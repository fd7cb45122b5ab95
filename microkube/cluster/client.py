"""JSON over HTTPS to a cluster agent, as a joiner or as a member node.

Three ways to trust: :meth:`AgentClient.unverified` only to fetch the CA
(whose hash the caller then checks), :meth:`AgentClient.pinned` trusting that
CA alone, and :meth:`AgentClient.as_node` that also proves which node is
asking with the node's kubelet client certificate.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from microkube.errors import MicrokubeError
from microkube.paths import Paths

# Seconds one request to the agent may take.
REQUEST_TIMEOUT = 15.0


class JoinError(MicrokubeError):
    """The join did not complete; the node was left as it was."""


class AgentError(JoinError):
    """The agent refused (``status`` is its HTTP status) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def ca_fingerprint(ca_pem: bytes) -> str:
    """The SHA-256 of a PEM certificate's DER form, as 64 lowercase hex digits."""
    try:
        der = ssl.PEM_cert_to_DER_cert(ca_pem.decode())
    except (ValueError, UnicodeDecodeError):
        raise JoinError("the agent's CA is not a PEM certificate") from None
    return hashlib.sha256(der).hexdigest()


@dataclass
class AgentClient:
    """JSON over HTTPS to the agent at ``address`` (``ip:port``, IPv6 in brackets);
    ``context`` decides what the client trusts and which certificate it presents."""

    address: str
    context: ssl.SSLContext
    timeout: float = REQUEST_TIMEOUT

    @classmethod
    def unverified(cls, address: str, timeout: float = REQUEST_TIMEOUT) -> AgentClient:
        """A client that trusts nothing yet: only for fetching the CA, whose hash is then checked."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return cls(address, context, timeout)

    @classmethod
    def pinned(cls, address: str, ca_pem: bytes,
               timeout: float = REQUEST_TIMEOUT) -> AgentClient:
        """A client that trusts ``ca_pem`` alone, and checks that the agent's certificate names its IP."""
        return cls(address, ssl.create_default_context(cadata=ca_pem.decode()), timeout)

    @classmethod
    def as_node(cls, address: str, paths: Paths,
                timeout: float = REQUEST_TIMEOUT) -> AgentClient:
        """A client that trusts the node's cluster CA and presents its kubelet client certificate
        (``system:node:<name>``). MicrokubeError when the node's credentials cannot be read."""
        from microkube.kube.api import user_tls_context

        try:
            return cls(address, user_tls_context(paths, "kubelet"), timeout)
        except (OSError, ssl.SSLError) as e:
            raise MicrokubeError(f"this node's credentials cannot be read ({e}); "
                                 "is it a member of a cluster?") from None

    def _url(self, path: str) -> str:
        return f"https://{self.address}{path}"

    def _open(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                body: bytes = resp.read()
                return body
        except urllib.error.HTTPError as e:
            raise AgentError(f"the cluster agent at {self.address} refused: {_error_line(e)}",
                             e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AgentError(f"cannot reach the cluster agent at {self.address}: {reason}") \
                from None

    def get_ca(self) -> bytes:
        """The PEM CA certificate the agent serves (``GET /v1/ca``)."""
        return self._open(urllib.request.Request(self._url("/v1/ca")))

    def post(self, path: str, doc: dict[str, Any]) -> dict[str, Any]:
        """POST ``doc`` as JSON; the JSON object answered. AgentError for a refusal (with the
        agent's one line) or an unreachable agent; JoinError for an answer that is not a JSON
        object."""
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
