"""The node's PKI: CAs, certificates, kubeconfigs and their renewal.

Everything is ECDSA P-256 (see keys.py for why). The node code calls
:func:`microkube.pki.node.ensure_node_pki` on every start; it is idempotent and cheap.

This package imports nothing itself: ``status`` reads certificate expiry through
:mod:`microkube.pki.expiry_summary` without loading ``cryptography`` (about 50 ms),
so callers import the submodule they need.
"""
