"""Failures of the PKI a user (or a joining node) can act on."""

from __future__ import annotations

from microkube.errors import MicrokubeError


class PkiError(MicrokubeError):
    """A certificate, key or kubeconfig is missing, damaged or inconsistent."""


class CsrRefused(PkiError):
    """A certificate request asks for something its signing profile does not allow."""
