"""The deploy folder read into units: what one file (or one chart with its values) asks for.

Files are read, never followed into subfolders; hidden files, editor leftovers
(``~``, ``.swp``) and ``*.skip`` files are ignored, as k3s ignores ``.skip``.

* ``NAME.yaml`` / ``NAME.yml`` / ``NAME.json``: a manifest (objects and/or
  ``HelmChart`` requests);
* ``NAME.tgz``: a chart archive, installed as release NAME in ``default``, with
  ``NAME.values.yaml`` as its values when that file exists.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
CHART_SUFFIX = ".tgz"
VALUES_SUFFIX = ".values.yaml"
IGNORED_SUFFIXES = (".skip", "~", ".swp", ".swx", ".tmp", ".bak")
LABEL_VALUE_MAX = 63
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Unit:
    """One thing the folder asks for.

    ``name`` is the file that names it (``app.yaml``, ``web.tgz``); ``files`` are
    every file it is read from (a chart's values file too); ``kind`` is
    "manifest" or "chart".
    """

    name: str
    kind: str
    files: tuple[Path, ...]

    @property
    def key(self) -> str:
        """The label value that marks what this unit created (see :func:`label_key`)."""
        return label_key(self.name)

    @property
    def path(self) -> Path:
        return self.files[0]

    @property
    def values_file(self) -> Path | None:
        """A chart's values file, when it has one."""
        return self.files[1] if self.kind == "chart" and len(self.files) > 1 else None

    def digest(self, extra: bytes = b"") -> str:
        """SHA-256 (hex) of every file's bytes (and ``extra``); OSError if one cannot be read."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        h.update(extra)
        return h.hexdigest()


def label_key(name: str) -> str:
    """A file name as a label value: itself when it is one (at most 63 characters of
    letters, digits, ``-_.``), else a readable prefix and a hash of the name."""
    if len(name) <= LABEL_VALUE_MAX and _LABEL_VALUE.match(name):
        return name
    readable = re.sub(r"[^-A-Za-z0-9_.]", "-", name).strip("-_.")[:50].strip("-_.")
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{readable}-{digest}" if readable else digest


def ignored(name: str) -> bool:
    """Whether a file in the folder is not for the deployer (hidden, a leftover, ``.skip``)."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def scan(folder: Path) -> list[Unit]:
    """The units of ``folder``, sorted by name; none when the folder does not exist.

    A values file with no chart beside it is a manifest of its own (it will
    usually fail to apply, and so be reported).
    """
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file() and not ignored(p.name))
    except FileNotFoundError:
        return []
    present = set(names)
    units = []
    for name in names:
        if name.endswith(CHART_SUFFIX):
            values = name.removesuffix(CHART_SUFFIX) + VALUES_SUFFIX
            files = (folder / name, *([folder / values] if values in present else []))
            units.append(Unit(name, "chart", files))
        elif name.endswith(VALUES_SUFFIX) and (
                name.removesuffix(VALUES_SUFFIX) + CHART_SUFFIX) in present:
            continue  # read with its chart
        elif name.endswith(MANIFEST_SUFFIXES):
            units.append(Unit(name, "manifest", (folder / name,)))
    return units
