"""``microkube secrets-encryption``: report on and rotate the node's Secrets key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from microkube.datastore import encryption, rotation
from microkube.datastore.etcdtools import EtcdTools
from microkube.errors import MicrokubeError
from microkube.paths import Paths

SECRETS_PREFIX = "/registry/secrets/"
API_SERVER_RESTART_TIMEOUT = 180.0


@dataclass(frozen=True)
class EncryptionStatus:
    """What ``status`` reports: no key material, only names."""

    enabled: bool  # the API server's arguments point at the configuration
    stage: str  # "start" or the rotation stage under way
    keys: tuple[str, ...]  # key names, the encrypting one first
    provider: str

    def lines(self) -> list[str]:
        """The report, as k3s words it."""
        out = [f"Encryption Status: {'Enabled' if self.enabled else 'Disabled'}",
               f"Current Rotation Stage: {self.stage}", "",
               "Active  Key Type   Name", "------  ---------  ----"]
        for i, name in enumerate(self.keys):
            out.append(f"{' *' if i == 0 else '  ':<8}{self.provider:<11}{name}")
        return out


def status(paths: Paths) -> EncryptionStatus:
    """The node's encryption state, read from its files (the node need not run)."""
    from microkube.node.setup import load_context
    from microkube.services.registry import api_server

    ctx = load_context(paths)
    keys = encryption.read_keys(paths.encryption_config)
    return EncryptionStatus(
        enabled=encryption.enabled(paths, ctx.args(api_server())),
        stage=rotation.stage(paths.encryption_rotation_file),
        keys=tuple(k.name for k in keys),
        provider=encryption.PROVIDER,
    )


def unconverted_secrets(tools: EtcdTools, prefix: bytes) -> list[str]:
    """Datastore keys of Secrets whose stored value does not start with ``prefix``."""
    return sorted(k for k, v in tools.get_prefix(SECRETS_PREFIX).items()
                  if not v.startswith(prefix))


def rotate_keys(paths: Paths, say: Callable[[str], None]) -> str:
    """Bring in a new key, re-encrypt every Secret with it, retire the old ones.

    The node must be running. Resumes a rotation stopped earlier. Returns the
    new key's name; raises MicrokubeError (the stage reached is kept) on failure.
    """
    from microkube.kube.kubectl import Kubectl
    from microkube.node.runtime import runtime_for
    from microkube.services.registry import api_server

    runtime = runtime_for(paths)
    runtime.require_running()
    if not status(paths).enabled:
        raise MicrokubeError(f"the API server does not use {paths.encryption_config} "
                             f"(--{encryption.API_SERVER_FLAG}); nothing to rotate")
    tools = EtcdTools(paths)
    kubectl = Kubectl(paths)

    def restart() -> None:
        runtime.restart_daemon(api_server(), timeout=API_SERVER_RESTART_TIMEOUT)

    def reencrypt() -> None:
        listing = kubectl.run(["get", "secrets", "--all-namespaces", "-o", "json"],
                              what="listing the Secrets")
        if not json.loads(listing).get("items"):
            return  # kubectl refuses an empty list
        kubectl.run(["replace", "-f", "-"], input=listing, timeout=600,
                    what="writing the Secrets back")

    return rotation.Rotation(
        config=paths.encryption_config,
        state_file=paths.encryption_rotation_file,
        restart_api_server=restart,
        reencrypt=reencrypt,
        unconverted=lambda prefix: unconverted_secrets(tools, prefix),
        say=say,
    ).run()
