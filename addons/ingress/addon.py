"""ingress: Traefik as a DaemonSet on host ports 80 and 443, with IngressClasses."""

from __future__ import annotations

import hashlib
from typing import Any

from microkube.addons.context import AddonContext
from microkube.errors import UsageError

_CERT_KEY = "_default_certificate"  # the validated secret, kept between validate and enable


def validate(ctx: AddonContext) -> None:
    """--default-ssl-certificate must name an existing TLS secret (checked before any change)."""
    ref: str | None = ctx.args.get("default-ssl-certificate")
    if not ref:
        return
    namespace, name = ref.split("/", 1)
    if not ctx.kubectl.exists(f"secret/{name}", namespace):
        raise UsageError(f"ingress: --default-ssl-certificate: secret {ref} does not exist")
    secret = ctx.kubectl.get_json(f"secret/{name}", namespace)
    data = secret.get("data") or {}
    if secret.get("type") != "kubernetes.io/tls" or not data.get("tls.crt") or not data.get(
            "tls.key"):
        raise UsageError(f"ingress: --default-ssl-certificate: {ref} is not a TLS secret "
                         "(type kubernetes.io/tls with tls.crt and tls.key)")
    digest = hashlib.sha256((data["tls.crt"] + data["tls.key"]).encode()).hexdigest()[:16]
    ctx.args[_CERT_KEY] = {"source": ref, "crt": data["tls.crt"], "key": data["tls.key"],
                           "digest": digest}


def _values(ctx: AddonContext) -> dict[str, Any]:
    return {"default_certificate": ctx.args.get(_CERT_KEY)}


def enable(ctx: AddonContext) -> None:
    ctx.apply(ctx.manifest(**_values(ctx)))
    ctx.args.pop(_CERT_KEY, None)  # the key material is not kept in the state file
    ctx.wait_rollout("daemonset/traefik", "ingress")
    cert = ctx.args.get("default-ssl-certificate")
    ctx.say(f"serving Ingress objects on {ctx.node.node_ip}:80 and :443 (classes public, traefik)"
            + (f"; default certificate from {cert}" if cert else ""))


def disable(ctx: AddonContext) -> None:
    ctx.delete(ctx.made_objects(default_certificate=None))
