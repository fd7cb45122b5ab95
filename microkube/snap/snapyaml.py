"""meta/snap.yaml from snapcraft.yaml, the way snapcraft writes it.

For a classic snap snapcraft adds no environment of its own, and hooks found
in snap/hooks/ are not listed: snapd discovers them in meta/hooks/.
"""

from __future__ import annotations

from typing import Any

import yaml

from microkube.snap.project import Project


def metadata(project: Project, version: str, arch: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": project.name}
    if project.title:
        doc["title"] = project.title
    doc.update({
        "version": version,
        "summary": project.summary,
        "description": project.description,
        "architectures": [arch],
        "base": project.base,
        "apps": {name: dict(app) for name, app in project.apps.items()},
        "confinement": project.confinement,
        "grade": project.grade,
    })
    return doc


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Multi-line text (the description) as a literal block, like snapcraft.
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def render(project: Project, version: str, arch: str) -> str:
    return yaml.dump(metadata(project, version, arch), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False)
