"""Checking a YAML document against a JSON schema, down to the one error worth showing.

Both the addon repository index (addons/schema.py) and the components manifest
(components/schema.py) are validated this way; each turns the error into its
own one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def first_error(schema: dict[str, Any], doc: Any) -> Any | None:
    """The most relevant ``jsonschema.ValidationError`` of ``doc``, or None if it is valid.

    Shallow errors come first, so a missing key is reported before a deep detail.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return None
    return jsonschema.exceptions.best_match(errors) or errors[0]


def field_path(parts: Iterable[object], doc: Any) -> str:
    """A readable location: 'addons[2] (dns).arguments[0].type'."""
    out = ""
    node = doc
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
            except (IndexError, KeyError, TypeError):
                node = None
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str):
                out += f" ({name})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def short_message(err: Any) -> str:
    """jsonschema's messages repeat the whole value; keep them to one short clause."""
    validator = err.validator
    if validator == "additionalProperties":
        known = set(err.schema.get("properties", {}))
        patterns = list(err.schema.get("patternProperties", {}))
        extra = sorted(k for k in err.instance
                       if k not in known and not any(re.search(p, k) for p in patterns))
        return f"unknown key '{extra[0]}'" if extra else "unknown key"
    if validator == "required":
        return str(err.message).replace(" is a required property", " is missing")
    if validator == "pattern":
        return f"{err.instance!r} is not a valid value"
    if validator in ("enum", "const"):
        allowed = err.schema.get("enum") or [err.schema.get("const")]
        return f"{err.instance!r} is not one of {', '.join(map(str, allowed))}"
    if validator == "type":
        return f"expected {err.schema['type']}, got {type(err.instance).__name__}"
    msg = str(err.message)
    return msg if len(msg) < 160 else msg[:157] + "..."
