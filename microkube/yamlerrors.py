"""One way to say where a YAML document is broken, for every file microkube reads."""

from __future__ import annotations

import yaml


def where(e: yaml.YAMLError) -> str:
    """' at line N' when the parser knows the line, else ''."""
    mark = getattr(e, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark is not None else ""
