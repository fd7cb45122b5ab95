"""The JSON schema of components/components.yaml, and one-line errors from it.

The schema says what each field may hold; manifest.py then checks what a schema
cannot see (placeholders, links to binaries the component builds, two components
installing one file). Each property's ``description`` finishes the sentence
"'<field>' must be ...", which is how a wrong value is reported.
"""

from __future__ import annotations

from typing import Any

from microkube.schemas import first_error

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
VERSION_PATTERN = r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$"
MODULE_PATTERN = r"^[a-z0-9.-]+\.[a-z]+(/[A-Za-z0-9._~-]+)*$"
DESTS = ["bin", "cni"]


def _text(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "pattern": r"\S", "description": description}


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "minLength": 1},
            "description": description}


_BINARY: dict[str, Any] = {
    "description": "a package path, or {package: PATH, tags: [TAGS]}",
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["package"],
            "properties": {
                "package": _text("a package path"),
                "tags": _strings("a list of build tags"),
            },
        },
    ],
}

COMPONENT_FIELDS: dict[str, Any] = {
    "module": {"type": "string", "pattern": MODULE_PATTERN,
               "description": "a Go module path (the module to build from)"},
    "version": {"type": "string", "pattern": VERSION_PATTERN,
                "description": "vX.Y.Z (semver)"},
    "why": _text("a non-empty string"),
    "wrapper": _text("a folder under components/ (a non-empty string)"),
    "packages": {
        "type": "object", "minProperties": 1,
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": _BINARY,
        "description": "a mapping of each binary name to its package path",
    },
    "dest": {"enum": DESTS, "description": "one of " + ", ".join(DESTS)},
    "links": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
              "description": "a mapping of link names to binary names"},
    "tags": _strings("a list of build tags"),
    "cgo": {"type": "boolean", "description": "true or false"},
    "buildmode": _text("a go -buildmode value (a non-empty string)"),
    "ldflags": _strings("a list of linker flags"),
    "replace_staging": _text("a version template such as v0.{minor}.{patch}"),
    "version_command": _strings("a command line (a list of strings)"),
    "c_libs": _strings("a list of pkg-config library names"),
    "omit_packages": _strings("a list of folders inside the module"),
    "shared": {"type": "array", "uniqueItems": True,
               "items": {"type": "string", "pattern": NAME_PATTERN},
               "description": "a list of folder names under components/ (lower-case letters, "
                              "digits and '-')"},
    "requires": {"type": "object", "minProperties": 1,
                 "propertyNames": {"pattern": MODULE_PATTERN},
                 "additionalProperties": {"type": "string", "pattern": VERSION_PATTERN},
                 "description": "a mapping of Go module paths to vX.Y.Z versions"},
    "part_versions": {
        "type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "required": ["module", "version_command"],
            "properties": {"module": {"type": "string", "pattern": MODULE_PATTERN},
                           "version_command": _strings("a command line (a list of strings)")},
        },
        "description": "a mapping of part names to {module: a 'requires' module, "
                       "version_command: [...]}",
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "microkube components manifest (components/components.yaml)",
    "type": "object",
    "additionalProperties": False,
    "required": ["components"],
    "properties": {
        "components": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": NAME_PATTERN},
            "description": "a non-empty mapping of component names to components",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["module", "version", "packages"],
                "properties": COMPONENT_FIELDS,
                # Leaving packages out changes upstream's build: the reason is written down.
                "dependentRequired": {"omit_packages": ["why"], "requires": ["why"]},
                "description": "a mapping of fields",
            },
        },
    },
}


def validate_manifest(doc: Any, fname: str) -> str | None:
    """None if ``doc`` matches the schema; else one line naming the file, the
    component and the field, e.g. "components.yaml: component 'etcd': missing 'version'"."""
    err = first_error(MANIFEST_SCHEMA, doc)
    if err is None:
        return None
    path = [str(p) for p in err.absolute_path]
    if not path:
        if err.validator == "required":
            return f"{fname}: missing 'components'"
        if err.validator == "additionalProperties":
            extra = sorted(set(map(str, err.instance)) - {"components"})
            return f"{fname}: unknown key '{extra[0]}'; expected only 'components'"
        return f"{fname}: expected a mapping with a 'components' key"
    if len(path) == 1:
        if _in_property_names(err):
            return (f"{fname}: component '{err.instance}': names are lower-case letters, "
                    "digits and '-'")
        return f"{fname}: 'components' must be a non-empty mapping of names to components"
    where = f"{fname}: component '{path[1]}'"
    if len(path) == 2 and err.validator == "type":
        return f"{where}: expected a mapping of fields"
    return f"{where}: {_message(err, path[2:])}"


def _in_property_names(err: Any) -> bool:
    return "propertyNames" in map(str, err.schema_path)


def _message(err: Any, field: list[str]) -> str:
    """One clause for ``err`` at ``field``, the path inside one component."""
    name = field[0] if field else ""
    if name == "packages" and len(field) >= 2 and err.validator == "oneOf" and isinstance(
            err.instance, dict):
        # Written as a mapping: report what is wrong with the mapping form.
        inner = sorted((e for e in err.context if list(e.schema_path)[:1] == [1]),
                       key=lambda e: e.validator != "additionalProperties")
        if inner:
            err, field = inner[0], [*field[:2], *map(str, inner[0].path)]
    if err.validator == "required" and name == "packages" and len(field) >= 2:
        return f"binary '{field[1]}': missing 'package'"
    if err.validator == "required":
        missing = str(err.message).split("'")[1]
        hint = {"module": " (the Go module path to build from)",
                "packages": " (each binary's name and package path)"}.get(missing, "")
        return f"missing '{missing}'{hint}"
    if err.validator == "dependentRequired":
        changed = "requires" if "requires" in err.instance else "omit_packages"
        return f"'{changed}' changes upstream's build: say why in 'why'"
    if err.validator == "additionalProperties" and not field:
        extra = sorted(set(map(str, err.instance)) - set(COMPONENT_FIELDS))
        return f"unknown field '{extra[0]}'; known: {', '.join(sorted(COMPONENT_FIELDS))}"
    if name == "version":
        return f"malformed version {err.instance!r}: must be vX.Y.Z (semver)"
    if name == "packages" and _in_property_names(err):
        return f"binary name {err.instance!r} is not a plain file name"
    if name == "packages" and len(field) >= 2:
        if field[2:3] == ["tags"]:
            return f"binary '{field[1]}': 'tags' must be a list of build tags"
        if err.validator == "additionalProperties":
            extra = sorted(set(map(str, err.instance)) - {"package", "tags"})
            return f"binary '{field[1]}': unknown field '{extra[0]}'"
        return f"binary '{field[1]}' needs a package path, or {{package: PATH, tags: [TAGS]}}"
    if name in COMPONENT_FIELDS:
        expected = COMPONENT_FIELDS[name]["description"]
        return f"'{name}' must be {expected}, not {_short(err.instance)}"
    return str(err.message)[:160]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
