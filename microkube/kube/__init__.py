"""The one Kubernetes client microkube uses, at the bottom of the layers.

Two ways in, for two jobs, both as the node's admin:

* :class:`microkube.kube.api.KubeApi`: a fast REST client (standard library
  only) for the few reads that must answer in well under a second (status,
  readiness, flannel's wait for its pod CIDR);
* :class:`microkube.kube.kubectl.Kubectl`: drives the bundled kubectl for
  what changes the cluster (server-side apply, its dry run, delete, rollout
  waits, lookups) on behalf of the addons and the bootstrap RBAC.

Nothing here imports the node, services or addons layers; they import this.
"""
