"""The cluster agent's HTTP API: its routes and handlers, served by cluster/httpserver.py.

Endpoints (all JSON but the CA):

- ``GET /v1/ca``: the cluster CA certificate (PEM), without authentication; a
  joiner compares its SHA-256 with the join string's before it sends a token.
- ``POST /v1/join/check`` ``{token, name, ip, role[, timeout]}``: checks the
  token and the joiner, reserves the token for this joiner until its timeout
  (plus a grace) has passed, and answers the cluster settings it must share.
- ``POST /v1/join/worker`` ``{token, name, ip, csrs}``: for a worker holding the
  token's reservation: undoes what an earlier try of the same joiner left,
  refuses a name or address that is a member already, records the admission,
  and answers the worker's certificates (signed with the restricted profiles of
  cluster/admission.py), the CA certificate and the API server's URL.
- ``POST /v1/join/control-plane`` ``{token, name, ip}``: for a control plane
  holding the token's reservation: refuses a name or address that is a member
  (a Node or an etcd member) already, or any change while an etcd voter is down;
  answers the files every control plane shares (CAs with their keys, service-account
  key, encryption configuration) and, on etcd, adds its member as a learner (removed
  again if the join fails) and answers what its etcd needs to join; on an external
  store (PostgreSQL, MySQL, etcd), answers the store's endpoints and TLS files
  instead; on SQLite, refuses (cluster/controlplane.py).
- ``POST /v1/join/complete`` ``{token, name, ip}``: the joiner's node is up; the
  token is spent.
- ``POST /v1/join/release`` ``{token}``: the join failed: what it added (its
  Node) is removed and the token may be used again.
- ``POST /v1/certificates/worker`` ``{csrs}``: a member renews its worker credentials
  before they expire. The client must present its own kubelet client certificate
  (``system:node:<name>``, signed by the cluster CA, still valid) and its Node must
  exist; the requests (any of the five a worker has) are signed with the same
  restricted profiles as at its join, fixed to the proven name.
- ``POST /v1/leave`` ``{name[, dry_run]}``: node ``name`` leaves: its datastore
  member and its Node are removed. The client must present that node's own
  kubelet client certificate (``system:node:<name>``, signed by the cluster CA).

A join that was admitted but neither completed nor released by its deadline
(the joiner died or was cut off) is undone the same way by a task that runs
every few seconds, so the cluster returns to the membership it had before.

Every error is a 4xx with one line of JSON, ``{"error": "..."}``: malformed
JSON, a body of the wrong shape, too large (413), chunked (411) or too slow (408),
a head too large (431), an unknown path (404), a wrong method (405), a refused
token (401/409), and too many refused tokens from one source (429, with Retry-After). A 5xx means a fault of
this node (503: its token file is damaged), never of the request.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from microkube.cluster import schema, skew
from microkube.cluster.admission import member_conflict, sign_worker_csrs
from microkube.cluster.httpserver import (
    ApiError,
    Handler,
    Reply,
    Request,
    Routes,
    error_reply,
    json_reply,
)
from microkube.cluster.ratelimit import FailureLimiter
from microkube.cluster.removal import NotAMember, RemovalRefused, plan_leave
from microkube.cluster.roster import ControlPlane, carry_out, undo_admission
from microkube.cluster.settings import ClusterSettings
from microkube.cluster.tokens import (
    RESERVATION_SECONDS,
    Holder,
    TokenRecord,
    TokenRefused,
    TokenStore,
    TokenStoreError,
)
from microkube.config.node import CONTROL_PLANE, WORKER, NodeConfig
from microkube.errors import MicrokubeError
from microkube.pki.errors import PkiError
from microkube.pki.names import is_dns1123_subdomain

log = logging.getLogger("microkube.cluster.agent")

MAX_BODY = 64 * 1024
DEFAULT_REQUEST_TIMEOUT = 10.0
# Seconds a join's reservation outlives the timeout its joiner announced.
JOIN_GRACE = 15.0
# Seconds between two looks for lapsed joins to undo.
UNDO_INTERVAL = 3.0
NODE_PREFIX = "system:node:"

T = TypeVar("T")
def read_json(request: Request, timeout: float) -> Any:
    """The request's body as JSON; ApiError 411, 413, 408 or 400 if it is chunked, too large,
    too slow (``timeout`` seconds) or malformed."""
    raw = request.read_body(MAX_BODY, timeout)
    if not raw:
        raise ApiError(400, "the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        detail = (e.msg if isinstance(e, json.JSONDecodeError)
                  else "nested too deeply" if isinstance(e, RecursionError) else "not JSON text")
        raise ApiError(400, f"the body is not valid JSON: {detail}") from None


def _token_store_faults(handler: Handler) -> Handler:
    """``handler``, answering 503 (logged) when this node's token file is damaged: a fault
    of the node, not of the request."""
    def guarded(request: Request) -> Reply:
        try:
            return handler(request)
        except TokenStoreError as e:
            log.error("token store: %s", e)
            return error_reply(503, f"this node cannot use its join tokens: {e}")
    return guarded


def _validated(body: Any, shape: dict[str, Any]) -> dict[str, Any]:
    problem = schema.problem(shape, body)
    if problem is not None:
        raise ApiError(400, f"bad request body: {problem}")
    assert isinstance(body, dict)
    return body


@dataclass(frozen=True)
class JoinRequest:
    """A joiner's request: its token, node name, address and role."""

    token: str
    name: str
    ip: str  # normalised
    role: str

    @property
    def holder(self) -> Holder:
        return Holder(self.name, self.ip)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> JoinRequest:
        """From a body that fits schema.JOIN_CHECK; ApiError 400 for a bad name or address."""
        name, ip_text = body["name"], body["ip"]
        if not is_dns1123_subdomain(name):
            raise ApiError(400, f"node name {name[:64]!r} is not a lowercase DNS name")
        try:
            ip = ipaddress.ip_address(ip_text)
        except ValueError:
            raise ApiError(400, f"{ip_text!r} is not an IP address") from None
        if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
            raise ApiError(400, f"{ip} cannot be a node's address: other nodes could not reach it")
        return cls(body["token"], name, str(ip), body.get("role", WORKER))


def reservation_seconds(timeout: float | None) -> float:
    """How long a join's reservation lasts: the joiner's ``timeout`` (seconds) plus a grace,
    at most RESERVATION_SECONDS (also the default)."""
    if timeout is None:
        return RESERVATION_SECONDS
    return min(RESERVATION_SECONDS, float(timeout) + JOIN_GRACE)


def node_identity(peercert: Any) -> str | None:
    """The node name a verified client certificate proves (``CN=system:node:<name>`` in
    ``O=system:nodes``), or None for no certificate or another identity."""
    if not isinstance(peercert, dict):
        return None
    subject = {k: v for rdn in peercert.get("subject", ()) for k, v in rdn}
    common_name = str(subject.get("commonName", ""))
    if subject.get("organizationName") != "system:nodes" or not common_name.startswith(NODE_PREFIX):
        return None
    return common_name[len(NODE_PREFIX):] or None


@dataclass(eq=False)
class JoinApi:
    """The handlers, around this node's CA (``ca_pem``), token store, failure limiter and
    settings; ``request_timeout`` (seconds) bounds a request body's arrival, and
    ``control_plane`` is None on a node that holds no datastore to admit into."""

    ca_pem: bytes
    node: NodeConfig
    settings: ClusterSettings
    store: TokenStore
    limiter: FailureLimiter
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    control_plane: ControlPlane | None = None
    # Admissions and their undoing happen one at a time: an undo never races a retry.
    _admissions: threading.Lock = field(default_factory=threading.Lock, init=False,
                                          repr=False)
    # (name, ip) of the control planes whose etcd learner this agent added.
    learners_added: set[tuple[str, str]] = field(default_factory=set, init=False)

    def routes(self) -> Routes:
        """This API's routes; a damaged token file makes any of them a 503."""
        routes = Routes()
        for method, path, handler in [
            ("GET", "/v1/ca", self.get_ca),
            ("POST", "/v1/join/check", self.post_join_check),
            ("POST", "/v1/join/worker", self.post_join_worker),
            ("POST", "/v1/join/control-plane", self.post_join_control_plane),
            ("POST", "/v1/join/complete", self.post_join_complete),
            ("POST", "/v1/join/release", self.post_join_release),
            ("POST", "/v1/leave", self.post_leave),
            ("POST", "/v1/certificates/worker", self.post_renew_worker),
        ]:
            routes.add(method, path, _token_store_faults(handler))
        return routes

    # --- failed joins ---------------------------------------------------------------------
    def undo_lapsed_joins_until(self, stop: threading.Event) -> None:
        """Every UNDO_INTERVAL seconds until ``stop`` is set, undo the lapsed joins (run it
        in a thread of its own)."""
        while not stop.wait(UNDO_INTERVAL):
            try:
                self.undo_lapsed_joins()
            except Exception:
                log.exception("undoing lapsed joins failed; trying again")

    def undo_lapsed_joins(self) -> int:
        """Undo every admitted join whose deadline passed; how many were undone."""
        if self.control_plane is None:
            return 0
        undone = 0
        with self._admissions:
            try:
                lapsed = self.store.lapsed_admissions()
            except TokenStoreError as e:
                log.error("token store: %s", e)
                return 0
            for record in lapsed:
                if self._undo(record, "did not complete by its deadline") \
                        and self.store.forget_admission(record):
                    undone += 1
        return undone

    def _undo(self, record: TokenRecord, why: str) -> bool:
        """Remove what ``record``'s admitted join added; False (logged) if the cluster did not answer."""
        holder, admitted_at = record.reserved_by, record.admitted_at
        assert holder is not None and admitted_at is not None and self.control_plane is not None
        try:
            gone = undo_admission(self.control_plane.roster, holder.name,
                                           holder.ip, admitted_at)
        except MicrokubeError as e:
            log.warning("cannot undo the join of %s (%s) yet: %s", holder.name, holder.ip, e)
            return False
        log.info("the join of %s (%s) %s; removed %s", holder.name, holder.ip, why,
                 " and ".join(gone) or "nothing (it had added nothing)")
        return True

    # --- handlers ----------------------------------------------------------------------
    def get_ca(self, request: Request) -> Reply:
        return Reply(200, self.ca_pem, content_type="application/x-pem-file")

    def post_join_check(self, request: Request) -> Reply:
        """Check the token and the joiner, then reserve the token for this joiner."""
        self._not_limited(request)
        body = _validated(read_json(request, self.request_timeout), schema.JOIN_CHECK)
        join = JoinRequest.from_body(body)
        self._authorised(request, lambda: self.store.check(join.token, join.holder))
        self._refuse_conflicts(join)
        if join.role == CONTROL_PLANE:
            # Before the joiner discards anything of its own: it cannot be a control plane here.
            self._control_plane_admitter()
        joiner_version = body.get("kubernetes_version")
        if joiner_version is not None and self.settings.kubernetes_version is not None:
            why = skew.refusal(join.role, joiner_version, self.settings.kubernetes_version)
            if why is not None:
                raise ApiError(409, why)
        seconds = reservation_seconds(body.get("timeout"))
        record = self._authorised(
            request, lambda: self.store.reserve(join.token, join.holder, seconds))
        log.info("token reserved for %s (%s, %s) from %s for %.0f s", join.name, join.ip,
                 join.role, request.remote, seconds)
        return json_reply({
            "status": "reserved",
            "reserved_until": record.reserved_until,
            "reserved_seconds": seconds,
            "role": join.role,
            "control_plane": {"name": self.node.node_name, "ip": self.node.node_ip},
            "cluster": self.settings.to_json(),
        })

    def post_join_worker(self, request: Request) -> Reply:
        """Sign a worker's certificate requests; the token stays reserved until complete."""
        self._not_limited(request)
        body = _validated(read_json(request, self.request_timeout), schema.JOIN_WORKER)
        join = JoinRequest.from_body(body)
        cp = self.control_plane
        if cp is None:
            raise ApiError(503, "this agent cannot admit workers: it runs without its control plane")
        self._admit(request, cp, join)
        try:
            ca = cp.ca()
            certificates = sign_worker_csrs(ca, join.name, body["csrs"])
        except PkiError as e:
            raise ApiError(400, str(e)) from None
        log.info("signed worker certificates for %s (%s) from %s", join.name, join.ip,
                 request.remote)
        return json_reply({
            "certificates": certificates,
            "ca": self.ca_pem.decode(),
            "api_server": cp.api_server,
            "control_plane": {"name": self.node.node_name, "ip": self.node.node_ip},
            "cluster": self.settings.to_json(),
        })

    def _admit(self, request: Request, cp: ControlPlane, join: JoinRequest,
                     then: Callable[[], Any] | None = None) -> Any:
        """Admit ``join``: it holds the token, what an earlier try of it left is undone, and
        no Node has its name or address. From then on a failure of the join is undone (its
        kubelet may register a Node, its etcd learner may be added). ``then`` runs (in a
        thread) while admissions are still held one at a time; its result is returned.

        Raises ApiError: 401/409/410 for the token, 409 for a member conflict, 503 when
        the control plane does not answer.
        """
        self._refuse_conflicts(join)
        with self._admissions:
            # Holding the token is how a joiner proves it holds the reservation (or may take it).
            record = self._authorised(request, lambda: self.store.hold(join.token, join.holder))
            if record.admitted_at is not None and not self._undo(
                    record, "is being tried again"):
                raise ApiError(503, "what an earlier try of this join left cannot be removed "
                                    "yet: the control plane does not answer; try again")
            try:
                nodes = cp.roster.nodes()
            except MicrokubeError as e:
                raise ApiError(503, f"the control plane's API server does not answer ({e}); "
                                    "try again once 'microkube status' says it is Ready") from None
            conflict = member_conflict(nodes, join.name, join.ip)
            if conflict is not None:
                raise ApiError(409, conflict)
            self._authorised(request, lambda: self.store.admit(join.token, join.holder))
            return then() if then is not None else None

    def post_join_control_plane(self, request: Request) -> Reply:
        """Hand a control plane the shared files, and on etcd add its learner; on an external
        store, hand it the store's endpoints and TLS files instead."""
        from microkube.cluster.admission import MemberConflict
        from microkube.datastore.membership import MembershipError

        self._not_limited(request)
        join = JoinRequest.from_body(_validated(read_json(request, self.request_timeout),
                                                schema.JOIN_COMPLETE))
        cp = self._control_plane_admitter()
        add_learner, datastore, shared = cp.add_learner, cp.datastore, cp.shared
        assert shared is not None
        try:
            files = shared()
            if add_learner is not None:
                etcd = self._admit(request, cp, join,
                                         lambda: add_learner(join.name, join.ip))
                answer: dict[str, Any] = {"etcd": etcd}
            else:
                assert datastore is not None
                answer = {"datastore": datastore()}
                self._admit(request, cp, join)
        except MemberConflict as e:
            raise ApiError(409, str(e)) from None
        except MembershipError as e:
            raise ApiError(503, f"the datastore cannot take a member now: {e}") from None
        if add_learner is not None:
            self.learners_added.add((join.name, join.ip))
            log.info("added %s (%s) to etcd as a learner, for %s", join.name, join.ip,
                     request.remote)
        else:
            log.info("shared the %s datastore with control plane %s (%s), for %s",
                     self.node.datastore, join.name, join.ip, request.remote)
        return json_reply({
            **answer,
            "files": files,
            "control_plane": {"name": self.node.node_name, "ip": self.node.node_ip},
            "cluster": self.settings.to_json(),
        })

    def post_join_complete(self, request: Request) -> Reply:
        """The joiner's node is up: spend the token it holds."""
        self._not_limited(request)
        join = JoinRequest.from_body(_validated(read_json(request, self.request_timeout),
                                                schema.JOIN_COMPLETE))
        cp = self.control_plane
        if cp is not None and cp.completed is not None:
            try:
                cp.completed(join.name, join.ip)
            except MicrokubeError as e:
                # A control plane this agent admitted must be recorded, or it is never promoted.
                if (join.name, join.ip) in self.learners_added:
                    raise ApiError(503, f"cannot record the completed join: {e}") from None
        self._authorised(request, lambda: self.store.consume(join.token, join.holder))
        log.info("%s (%s) joined; its token is spent", join.name, join.ip)
        return json_reply({"consumed": True})

    def post_join_release(self, request: Request) -> Reply:
        """End the token's reservation: the join failed and may be tried again."""
        self._not_limited(request)
        body = _validated(read_json(request, self.request_timeout), schema.JOIN_RELEASE)
        token = body["token"]
        with self._admissions:
            record = self._authorised(request, lambda: self.store.reservation(token))
            if record is not None and record.admitted_at is not None \
                    and self.control_plane is not None and not self._undo(record, "failed"):
                raise ApiError(503, "what the join added cannot be removed yet: the control "
                                    "plane does not answer; it is removed once the join's "
                                    "deadline passes")
            released = self._authorised(request, lambda: self.store.release(token))
        return json_reply({"released": released})

    def post_renew_worker(self, request: Request) -> Reply:
        """Sign the renewal requests of the member node whose certificate the client presents."""
        body = _validated(read_json(request, self.request_timeout), schema.RENEW_WORKER)
        name = self._proven_node(request, "renewing certificates")
        cp = self.control_plane
        if cp is None:
            raise ApiError(503, "this agent cannot sign: it runs without its control plane")
        try:
            nodes = cp.roster.nodes()
        except MicrokubeError as e:
            raise ApiError(503, f"the control plane's API server does not answer ({e}); "
                                "try again") from None
        if not any(n.get("metadata", {}).get("name") == name for n in nodes):
            raise ApiError(403, f"node {name} is not a member of this cluster (no Node); "
                                "join it again")
        try:
            ca = cp.ca()
            certificates = sign_worker_csrs(ca, name, body["csrs"])
        except PkiError as e:
            raise ApiError(400, str(e)) from None
        log.info("renewed %s for %s from %s", ", ".join(sorted(certificates)), name,
                 request.remote)
        return json_reply({"certificates": certificates})

    def _proven_node(self, request: Request, action: str) -> str:
        """The node name the client's verified certificate proves; ApiError 401 without one."""
        proven = node_identity(request.peercert)
        if proven is None:
            raise ApiError(401, f"{action} needs the node's own kubelet client certificate "
                                "(system:node:<name>, signed by this cluster's CA)")
        return proven

    def post_leave(self, request: Request) -> Reply:
        """Remove the datastore member and the Node of the node whose certificate the client
        presents; with ``dry_run`` only say what would go (or why it may not)."""
        body = _validated(read_json(request, self.request_timeout), schema.LEAVE)
        name = body["name"]
        proven = self._proven_node(request, "leaving")
        if proven != name:
            raise ApiError(403, f"the certificate is node {proven}'s; it cannot take out {name}")
        cp = self.control_plane
        if cp is None:
            raise ApiError(503, "this agent cannot remove nodes: it runs without its control plane")
        try:
            nodes = cp.roster.nodes()
            members = cp.roster.members()
            healthy = cp.roster.healthy_voters(members)
            removal = plan_leave(name, nodes, members, healthy, self.node.node_name)
            if not body.get("dry_run", False):
                carry_out(cp.roster, removal, lambda _line: None)
                log.info("%s left: removed %s", name, removal.describe())
        except NotAMember as e:
            raise ApiError(404, str(e)) from None
        except RemovalRefused as e:
            raise ApiError(409, str(e)) from None
        except MicrokubeError as e:
            raise ApiError(503, f"the control plane cannot take {name} out now: {e}") from None
        return json_reply({"removed": removal.to_json(),
                                  "dry_run": bool(body.get("dry_run", False))})

    # --- checks --------------------------------------------------------------------------
    def _not_limited(self, request: Request) -> None:
        wait = self.limiter.retry_after(request.remote or "")
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(429, f"too many refused tokens from {request.remote}; "
                                f"try again in {seconds} s",
                           headers={"Retry-After": str(seconds)})

    def _authorised(self, request: Request, use: Callable[[], T]) -> T:
        """``use()`` of the token store; a refusal counts against the client's address."""
        try:
            return use()
        except TokenRefused as e:
            self.limiter.failed(request.remote or "")
            raise ApiError(e.status, str(e)) from None

    def _control_plane_admitter(self) -> ControlPlane:
        """This agent's control plane, if it can admit another; else ApiError: 503 without
        one, 409 (one line) on a datastore only one control plane can use (SQLite)."""
        cp = self.control_plane
        if cp is None or cp.shared is None:
            raise ApiError(503, "this agent cannot admit control planes: "
                                "it runs without its control plane")
        if cp.add_learner is None and cp.datastore is None:
            raise ApiError(409, f"this cluster keeps its state in {self.node.datastore} on its "
                                "control plane, which no other control plane can share; join "
                                "with --worker instead")
        return cp

    def _refuse_conflicts(self, join: JoinRequest) -> None:
        if join.name == self.node.node_name or join.ip == self.node.node_ip:
            raise ApiError(409, f"node {join.name} ({join.ip}) is this control plane itself "
                                f"({self.node.node_name}, {self.node.node_ip}); a node cannot "
                                "join itself, and each node needs its own name and address")

