"""Reading YAML files, and one way to say where a YAML document is broken, for every file
microkube reads.

:func:`read` keeps a JSON copy of a file it parsed in a cache folder, when given one,
and answers from it while the file is unchanged (same inode, size and mtime: an
atomic write or an editor's save gives a new inode). ``status`` reads five YAML
files on every run; PyYAML's import alone costs it more than the rest of its
settings, so with the copies warm it never imports PyYAML.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import yaml


def where(e: yaml.YAMLError) -> str:
    """' at line N' when the parser knows the line, else ''."""
    mark = getattr(e, "problem_mark", None)
    return f" at line {mark.line + 1}" if mark is not None else ""


class YamlError(ValueError):
    """A file that is not valid YAML: ``str(e)`` is the parser's problem in one line (its
    message spans several), ``where`` says ' at line N' (or '')."""

    def __init__(self, error: yaml.YAMLError) -> None:
        lines = str(error).splitlines() or [type(error).__name__]
        super().__init__(f"{getattr(error, 'problem', None) or lines[0]}{where(error)}")
        self.where = where(error)


def parse(text: str | bytes) -> Any:
    """The YAML document in ``text`` (libyaml's safe loader where PyYAML has it: a fifth
    of the pure-Python one's time); bytes are decoded as YAML says (UTF-8, or UTF-16 with
    its mark). Raises YamlError, for bytes that are no such text too."""
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        raise YamlError(e) from None


def _copy_path(path: Path, cache_dir: Path) -> Path:
    return cache_dir / (str(path.absolute()).strip("/").replace("/", "%") + ".json")


def read(path: Path, cache_dir: Path | None = None) -> Any:
    """The YAML document in file ``path``; from its JSON copy in ``cache_dir`` while the file
    is unchanged, else parsed (and the copy written, when the folder can be).

    Raises OSError (FileNotFoundError included) when the file cannot be read, YamlError
    when it is not valid YAML. A document JSON cannot hold exactly (a non-string key, a
    date) is never copied.
    """
    if cache_dir is None:
        return parse(path.read_bytes())
    st = os.stat(path)
    key = _key(st)
    copy = _copy_path(path, cache_dir)
    current, doc = _copied(copy, key)
    if current:
        return doc
    doc = parse(path.read_bytes())
    if os.stat(path).st_mtime_ns == st.st_mtime_ns:  # not rewritten while it was read
        _write_copy(copy, key, doc, st.st_mode)
    return doc


def has_current_copy(path: Path, cache_dir: Path) -> bool:
    """Whether ``read(path, cache_dir)`` would answer from the JSON copy without parsing (and
    so without importing PyYAML); False when the file cannot be read either."""
    try:
        return _copied(_copy_path(path, cache_dir), _key(os.stat(path)))[0]
    except OSError:
        return False


def _key(st: os.stat_result) -> list[int]:
    """What a copy is keyed by: it stays current while the file is neither replaced nor written."""
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _copied(copy: Path, key: list[int]) -> tuple[bool, Any]:
    """(True, the document) from the copy if it was made from the file as keyed, else
    (False, None)."""
    try:
        cached = json.loads(copy.read_bytes())
        if cached["key"] == key:
            return True, cached["doc"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return False, None


def _write_copy(copy: Path, key: list[int], doc: Any, mode: int) -> None:
    from microkube.fsutil import write_atomic

    try:
        body = json.dumps({"key": key, "doc": doc})
        if json.loads(body)["doc"] != doc:  # e.g. int keys would come back as strings
            return
        copy.parent.mkdir(mode=0o755, exist_ok=True)
        # As readable as the file itself: a private file's copy is private too.
        write_atomic(copy, body, mode=0o644 if mode & 0o044 == 0o044 else 0o600)
    except (OSError, TypeError, ValueError):
        pass  # a read-only caller (status as a user) parses next time too
