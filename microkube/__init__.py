"""microkube: a small, snap-packaged Kubernetes distribution."""

__version__ = "0.1.0"
