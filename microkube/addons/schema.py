"""The JSON schema of a repository's ``addons.yaml``, and one-line errors from it.

The schema is the contract for third-party repositories too, so every field
is described and nothing unknown is accepted: a typo in a key is an error
naming the key, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Any

from microkube.schemas import field_path, first_error, short_message

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# An addon reference in 'requires': NAME (same repository) or REPO/NAME.
REF_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ARCHITECTURES = ["amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64"]
ARGUMENT_TYPES = ["string", "flag", "ip-list", "ip-ranges", "quantity", "secret-ref", "choice", "int"]

_ARGUMENT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "help"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "type": {"enum": ARGUMENT_TYPES},
        "help": {"type": "string", "minLength": 1},
        "default": {"type": ["string", "boolean", "integer"]},
        "choices": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "metavar": {"type": "string"},
        # The value after 'addon:' (as in 'dns:1.1.1.1,8.8.8.8') goes to this argument.
        "positional": {"type": "boolean"},
    },
}

_ENABLED_WHEN: dict[str, Any] = {
    "description": "How to tell the addon is enabled: exactly one of these.",
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 2,
    "properties": {
        # An object the addon creates, e.g. 'deployment/coredns' (kubectl's spelling).
        "resource": {"type": "string", "pattern": r"^[a-z0-9.]+/[a-z0-9][-a-z0-9.]*$"},
        "namespace": {"type": "string", "pattern": NAME_PATTERN},
        # A daemon flag whose value contains a word, e.g. RBAC in --authorization-mode.
        "flag": {
            "type": "object",
            "additionalProperties": False,
            "required": ["daemon", "name", "contains"],
            "properties": {
                "daemon": {"type": "string"},
                "name": {"type": "string"},
                "contains": {"type": "string"},
            },
        },
        # A program bundled in $SNAP/bin: the addon is part of microkube itself.
        "bundled": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"},
    },
    "oneOf": [
        {"required": ["resource"],
         "not": {"anyOf": [{"required": ["flag"]}, {"required": ["bundled"]}]}},
        {"required": ["flag"], "maxProperties": 1},
        {"required": ["bundled"], "maxProperties": 1},
    ],
}

INDEX_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "microkube addon repository index (addons.yaml)",
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "description", "addons"],
    "properties": {
        "format": {"const": 1},
        "description": {"type": "string", "minLength": 1},
        "addons": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "description", "version", "enabled_when",
                             "architectures"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "description": {"type": "string", "minLength": 1},
                    "version": {"type": "string", "pattern": r"^[0-9A-Za-z][0-9A-Za-z.+-]*$"},
                    "enabled_when": _ENABLED_WHEN,
                    "architectures": {
                        "type": "array", "minItems": 1, "uniqueItems": True,
                        "items": {"enum": ARCHITECTURES},
                    },
                    "requires": {"type": "array", "uniqueItems": True,
                                 "items": {"type": "string", "pattern": REF_PATTERN}},
                    "aliases": {"type": "array", "uniqueItems": True,
                                "items": {"type": "string", "pattern": NAME_PATTERN}},
                    # Image archives (images/addons/<name>.tar) imported on enable.
                    "images": {"type": "array", "uniqueItems": True,
                               "items": {"type": "string", "pattern": NAME_PATTERN}},
                    "arguments": {"type": "array", "items": _ARGUMENT},
                    "disable_arguments": {"type": "array", "items": _ARGUMENT},
                },
            },
        },
    },
}


def validate_index(doc: Any, source: str) -> str | None:
    """None if ``doc`` is a valid index; else one line naming the file and the field."""
    err = first_error(INDEX_SCHEMA, doc)
    if err is None:
        return None
    where = field_path(err.absolute_path, doc)
    return f"{source}: {where}: {_message(err)}"


def _message(err: Any) -> str:
    """One short clause for ``err``; ``enabled_when``'s one-of gets its own wording."""
    if err.validator in ("oneOf", "minProperties", "maxProperties") and "enabled_when" in map(
            str, err.absolute_path):
        return "give exactly one of: resource (with optional namespace), flag, bundled"
    return short_message(err)
