"""metrics-server: 'kubectl top', with TLS verified both ways against the cluster CA.

The kubelet's serving certificate is signed by the cluster CA, so
metrics-server gets that CA (a ConfigMap) instead of --kubelet-insecure-tls;
and metrics-server serves with a certificate the same CA signs for its
Service name, which the APIService's caBundle lets the aggregator verify.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from microkube.addons.context import AddonContext

SERVICE_NAMES = ("metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _serving_certificate(ctx: AddonContext) -> dict[str, str]:
    from microkube.pki.ca import load_ca
    from microkube.pki.certs import LeafSpec, Usage, cert_pem
    from microkube.pki.keys import new_key, private_pem

    ca = load_ca(ctx.paths.pki.ca)
    key = new_key()
    names = (*SERVICE_NAMES, f"metrics-server.kube-system.svc.{ctx.node.cluster_domain}")
    cert = ca.issue(LeafSpec(common_name="metrics-server", usage=Usage.SERVER, dns_names=names),
                    key.public_key())
    crt = cert_pem(cert)
    return {"crt": _b64(crt), "key": _b64(private_pem(key)),
            "digest": hashlib.sha256(crt).hexdigest()[:16]}


def _values(ctx: AddonContext, serving: dict[str, str]) -> dict[str, Any]:
    ca_pem = (ctx.paths.certs_dir / "ca.crt").read_bytes()
    return {"ca_pem": ca_pem.decode().strip(), "ca_bundle": _b64(ca_pem), "serving": serving}


def enable(ctx: AddonContext) -> None:
    ctx.apply(ctx.manifest(**_values(ctx, _serving_certificate(ctx))))
    ctx.wait_rollout("deployment/metrics-server", "kube-system")
    ctx.kubectl.run(["wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io",
                     "--timeout=120s"], timeout=150, what="waiting for the metrics API")
    ctx.say("'microkube kubectl top nodes' and 'top pods' work now")


def disable(ctx: AddonContext) -> None:
    placeholder = {"crt": "", "key": "", "digest": ""}
    ctx.delete(ctx.made_objects(**_values(ctx, placeholder)))
