"""The API server's EncryptionConfiguration: Secrets encrypted at rest, on by default.

microkube writes one ``secretbox`` provider (XSalsa20-Poly1305, 32-byte keys:
upstream's table rates it strong and fast, where aescbc is open to padding-oracle
attacks and aesgcm needs a rotation every 200k writes), followed by ``identity``
so Secrets written before encryption was on stay readable until the next
rotation rewrites them. The first key of the list encrypts; every key decrypts.

The file lives in the credentials directory, 0600, and no key is ever printed.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from microkube.config import args
from microkube.errors import UsageError
from microkube.fsutil import write_private
from microkube.paths import Paths

PROVIDER = "secretbox"
KEY_BYTES = 32
API_SERVER_FLAG = "encryption-provider-config"
# What the API server writes in front of a Secret it encrypted with key NAME.
CIPHERTEXT_PREFIX = f"k8s:enc:{PROVIDER}:v1:"
_NAME_RE = re.compile(r"^[a-z0-9][-a-z0-9]{0,62}$")


@dataclass(frozen=True)
class Key:
    """One named key; ``secret`` is the base64 of 32 random bytes and must never be printed."""

    name: str
    secret: str

    def __repr__(self) -> str:  # a stray log line must not leak the key
        return f"Key(name={self.name!r})"


def new_key(now: dt.datetime | None = None) -> Key:
    """A fresh random key named after the UTC time it was made (``key-20261129t221500``)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dt%H%M%S")
    return Key(f"key-{stamp}", base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode())


def ciphertext_prefix(key_name: str) -> bytes:
    """The bytes every Secret encrypted with ``key_name`` starts with in the datastore."""
    return f"{CIPHERTEXT_PREFIX}{key_name}:".encode()


def render(keys: list[Key]) -> str:
    """The EncryptionConfiguration YAML for ``keys``, the first one encrypting."""
    if not keys:
        raise ValueError("an encryption configuration needs at least one key")
    doc = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{
            "resources": ["secrets"],
            "providers": [
                {PROVIDER: {"keys": [{"name": k.name, "secret": k.secret} for k in keys]}},
                {"identity": {}},
            ],
        }],
    }
    return ("# Written by microkube: the keys Secrets are encrypted with. Keep this file\n"
            "# private; rotate with 'microkube secrets-encryption rotate-keys'.\n"
            + yaml.safe_dump(doc, sort_keys=False))


def parse(text: str | bytes, source: str) -> list[Key]:
    """The keys of a configuration microkube wrote, the encrypting one first.

    Raises UsageError naming ``source`` for YAML that is not in that form.
    """
    def bad(why: str) -> UsageError:
        return UsageError(f"{source}: {why}; it is not an encryption configuration "
                          "microkube can manage")

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise bad("not valid YAML") from None
    if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
        raise bad("kind is not EncryptionConfiguration")
    resources = doc.get("resources")
    if not isinstance(resources, list) or len(resources) != 1:
        raise bad("expected exactly one resources entry")
    providers = resources[0].get("providers") if isinstance(resources[0], dict) else None
    if not isinstance(providers, list) or not providers or not isinstance(providers[0], dict) \
            or PROVIDER not in providers[0]:
        raise bad(f"the first provider is not {PROVIDER}")
    raw = (providers[0][PROVIDER] or {}).get("keys")
    if not isinstance(raw, list) or not raw:
        raise bad(f"the {PROVIDER} provider has no keys")
    keys = [_key(k, bad) for k in raw]
    if len({k.name for k in keys}) != len(keys):
        raise bad("two keys share a name")
    return keys


def _key(raw: Any, bad: Any) -> Key:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) \
            or not isinstance(raw.get("secret"), str):
        raise bad("a key lacks a name or a secret")
    try:
        size = len(base64.b64decode(raw["secret"], validate=True))
    except ValueError:
        size = -1
    if size != KEY_BYTES or not _NAME_RE.match(raw["name"]):
        raise bad(f"key '{raw['name']}' is not a {KEY_BYTES}-byte base64 key with a plain name")
    return Key(raw["name"], raw["secret"])


def read_keys(path: Path) -> list[Key]:
    """The keys in the configuration at ``path``; UsageError if it is missing or malformed."""
    try:
        data = path.read_bytes()  # YAML decodes it: bytes that are no text are "not valid YAML"
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; Secrets encryption is not set up on this node") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot be read ({e.strerror})") from None
    return parse(data, str(path))


def write_keys(path: Path, keys: list[Key]) -> None:
    """Write the configuration for ``keys`` atomically, 0600."""
    write_private(path, render(keys))


def ensure(paths: Paths) -> bool:
    """Set up encryption at rest on a node that has none; True if it did.

    Writes a configuration with one new key and, for a node set up before
    encryption existed, points the API server's argument file at it. A node
    that has a configuration is left alone (a user who removed the flag keeps
    it removed).
    """
    if paths.encryption_config.exists():
        return False
    write_keys(paths.encryption_config, [new_key()])
    apiserver_args = paths.args_file("kube-apiserver")
    if apiserver_args.exists() and f"--{API_SERVER_FLAG}" not in apiserver_args.read_text():
        args.set_flag(paths, "kube-apiserver", API_SERVER_FLAG,
                      "${SNAP_DATA}/credentials/" + paths.encryption_config.name)
    return True


def enabled(paths: Paths, apiserver_argv: list[str]) -> bool:
    """True if the API server runs with our configuration (its parsed argv is given)."""
    value = args.flag_value(apiserver_argv, API_SERVER_FLAG)
    return value is not None and Path(value) == paths.encryption_config
