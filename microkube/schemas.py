"""Checking a YAML document against a JSON schema, down to the one error worth showing.

Both the addon repository index (addons/schema.py) and the components manifest
(components/schema.py) are validated this way; each turns the error into its
own one-line message.
"""

from __future__ import annotations

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
