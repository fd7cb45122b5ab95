"""Suite-wide pytest setup: strict skips in CI (see tests/strict_skips.py), and pytester."""

from __future__ import annotations

import os

import pytest

from tests import strict_skips

# The unit tests of the strict-skip plugin run small pytest sessions of their own.
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    """With MICROKUBE_STRICT_SKIPS=1, register the plugin that fails runs with unlisted skips."""
    try:
        plugin = strict_skips.plugin_from_env(os.environ)
    except strict_skips.AllowListError as e:
        raise pytest.UsageError(str(e)) from None
    if plugin is not None:
        config.pluginmanager.register(plugin, "microkube-strict-skips")
