"""registry: a private registry on NodePort 32000 that containerd pulls from over HTTP."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

from microkube.addons.context import AddonContext
from microkube.errors import UsageError
from microkube.fsutil import write_atomic

NODE_PORT = 32000


def _hosts_dir(ctx: AddonContext) -> Path:
    return ctx.paths.registry_hosts_dir / f"localhost:{NODE_PORT}"


def _values(ctx: AddonContext) -> dict[str, Any]:
    return {"node_port": NODE_PORT, "http_secret": secrets.token_hex(16)}


def validate(ctx: AddonContext) -> None:
    name = ctx.args["storageclass"]
    if name != "microkube-hostpath" and not ctx.kubectl.exists(f"storageclass/{name}", None):
        raise UsageError(f"registry: --storageclass: storage class {name} does not exist")


def enable(ctx: AddonContext) -> None:
    values = _values(ctx)
    # containerd reads certs.d on every pull, so this applies without a restart.
    write_atomic(_hosts_dir(ctx) / "hosts.toml", ctx.render("hosts.toml.j2", **values))
    ctx.apply(ctx.manifest(**values))
    ctx.wait_rollout("deployment/registry", "container-registry")
    ctx.say(f"push to localhost:{NODE_PORT}/NAME:TAG; pods pull it as localhost:{NODE_PORT}/NAME:TAG "
            f"({ctx.args['size']} volume, class {ctx.args['storageclass']})")


def disable(ctx: AddonContext) -> None:
    ctx.delete(ctx.made_objects(**_values(ctx)))
    shutil.rmtree(_hosts_dir(ctx), ignore_errors=True)
