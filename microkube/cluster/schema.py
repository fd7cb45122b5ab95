"""The shapes of the cluster agent's request bodies, as JSON schemas.

Shape only (types, required keys, lengths, the role's values); what the values
mean (a DNS name, an IP address, a known token) is checked by the handlers.
``jsonschema`` (about 5 MB resident) is imported on the first request checked, not
when the agent starts: an agent that admits nobody stays small.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from microkube.cluster.admission import WORKER_CSRS
from microkube.cluster.tokens import MAX_TOKEN_LENGTH

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

ROLES = ("control-plane", "worker")
# Error messages quote the offending value; a line stays readable.
MESSAGE_LIMIT = 200

_TOKEN = {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_LENGTH}

JOIN_CHECK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["token", "name", "ip", "role"],
    "properties": {
        "token": _TOKEN,
        "name": {"type": "string", "minLength": 1, "maxLength": 253},
        "ip": {"type": "string", "minLength": 2, "maxLength": 45},
        "role": {"enum": list(ROLES)},
        # Seconds the joiner will wait for its join: the agent undoes it if it is not complete by then.
        "timeout": {"type": "number", "minimum": 1, "maximum": 3600},
        # The Kubernetes version the joiner runs, checked against the skew policy (skew.py).
        "kubernetes_version": {"type": "string", "minLength": 1, "maxLength": 64},
    },
}

JOIN_RELEASE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["token"],
    "properties": {"token": _TOKEN},
}

_PEM = {"type": "string", "minLength": 1, "maxLength": 8192}

JOIN_WORKER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["token", "name", "ip", "csrs"],
    "properties": {
        "token": _TOKEN,
        "name": JOIN_CHECK["properties"]["name"],
        "ip": JOIN_CHECK["properties"]["ip"],
        "csrs": {
            "type": "object",
            "additionalProperties": False,
            "required": list(WORKER_CSRS),
            "properties": {kind: _PEM for kind in WORKER_CSRS},
        },
    },
}

JOIN_COMPLETE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["token", "name", "ip"],
    "properties": {k: JOIN_WORKER["properties"][k] for k in ("token", "name", "ip")},
}

LEAVE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": JOIN_CHECK["properties"]["name"],
        # Only check that the node may leave; remove nothing.
        "dry_run": {"type": "boolean"},
    },
}

# A member's renewal: the node is proven by its client certificate, so only the requests.
RENEW_WORKER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["csrs"],
    "properties": {
        "csrs": {**JOIN_WORKER["properties"]["csrs"], "required": [], "minProperties": 1},
    },
}

SCHEMAS = (JOIN_CHECK, JOIN_RELEASE, JOIN_WORKER, JOIN_COMPLETE, LEAVE, RENEW_WORKER)


@functools.cache
def _validators() -> dict[int, Draft202012Validator]:
    """A validator for each of SCHEMAS, by the schema's id; made once, on first use."""
    from jsonschema import Draft202012Validator

    return {id(s): Draft202012Validator(s) for s in SCHEMAS}


def problem(schema: dict[str, Any], body: Any) -> str | None:
    """One line saying how ``body`` breaks ``schema`` (one of this module's), or None if it fits.

    Raises KeyError for a schema that is not one of SCHEMAS.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validators()[id(schema)].iter_errors(body))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)[:MESSAGE_LIMIT // 2] or "the body"
    message = " ".join(f"{where}: {error.message}".split())
    if len(message) <= MESSAGE_LIMIT:
        return message
    # The message quotes a long value: say which rule it breaks instead.
    if error.validator == "maxLength":
        return f"{where}: is too long (at most {error.validator_value} characters)"
    rule = json.dumps(error.validator_value)
    rule = rule if len(rule) <= MESSAGE_LIMIT // 2 else rule[: MESSAGE_LIMIT // 2] + "..."
    return f"{where}: does not satisfy {error.validator} {rule}"
