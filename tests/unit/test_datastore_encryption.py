"""Encryption configuration and the key rotation's stage machine (actions faked, files real)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from microkube.datastore import encryption, rotation
from microkube.datastore.encryption import Key
from microkube.errors import MicrokubeError, UsageError


def test_render_parse_round_trip_keeps_order_and_never_shows_secrets() -> None:
    keys = [encryption.new_key(), Key("key-old", base64.b64encode(b"k" * 32).decode())]
    assert encryption.parse(encryption.render(keys), "f") == keys
    assert len(base64.b64decode(keys[0].secret)) == 32
    assert keys[0].secret not in repr(keys)
    assert "identity" in encryption.render(keys)  # plain Secrets of before stay readable


@pytest.mark.parametrize("text, words", [
    ("kind: Pod\n", "kind is not EncryptionConfiguration"),
    (": : :", "not valid YAML"),
    ("kind: EncryptionConfiguration\nresources:\n- providers:\n  - aescbc: {}\n",
     "first provider is not secretbox"),
    ("kind: EncryptionConfiguration\nresources:\n- providers:\n  - secretbox:\n"
     "      keys:\n      - {name: a, secret: c2hvcnQ=}\n", "not a 32-byte base64 key"),
])
def test_foreign_configurations_are_refused(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        encryption.parse(text, "cfg")


def test_a_configuration_of_binary_bytes_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "encryption-config.yaml"
    path.write_bytes(b"\xff\x00")
    with pytest.raises(UsageError, match="not valid YAML"):
        encryption.read_keys(path)


class FakeNode:
    """Stands in for the API server and the datastore: Secrets remember the key they were
    written with; a write uses the first key of the configuration the server last loaded."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.loaded = [k.name for k in encryption.read_keys(config)]
        self.secrets = {"a": self.loaded[0], "b": self.loaded[0]}
        self.restarts = 0
        self.fail_restart_at: int | None = None

    def restart(self) -> None:
        self.restarts += 1
        if self.fail_restart_at == self.restarts:
            raise MicrokubeError("node stopped")
        self.loaded = [k.name for k in encryption.read_keys(self.config)]
        # Every Secret must stay readable with what the server loads.
        assert set(self.secrets.values()) <= set(self.loaded), (self.secrets, self.loaded)

    def reencrypt(self) -> None:
        for name in self.secrets:
            self.secrets[name] = self.loaded[0]

    def unconverted(self, prefix: bytes) -> list[str]:
        return [n for n, k in self.secrets.items() if not prefix.endswith(f":{k}:".encode())]


def _rotation(tmp_path: Path, node: FakeNode) -> rotation.Rotation:
    return rotation.Rotation(config=node.config, state_file=tmp_path / "rot.json",
                             restart_api_server=node.restart, reencrypt=node.reencrypt,
                             unconverted=node.unconverted, say=lambda s: None)


@pytest.fixture
def node(tmp_path: Path) -> FakeNode:
    cfg = tmp_path / "enc.yaml"
    encryption.write_keys(cfg, [Key("key-old", base64.b64encode(b"o" * 32).decode())])
    assert cfg.stat().st_mode & 0o777 == 0o600
    return FakeNode(cfg)


def test_rotation_brings_in_a_key_and_retires_the_old(tmp_path: Path, node: FakeNode) -> None:
    new = _rotation(tmp_path, node).run()
    assert [k.name for k in encryption.read_keys(node.config)] == [new]
    assert node.secrets == {"a": new, "b": new}
    assert node.restarts == 3
    assert rotation.stage(tmp_path / "rot.json") == rotation.IDLE


@pytest.mark.parametrize("stop_at", [1, 2, 3])
def test_a_rotation_stopped_at_any_restart_finishes_on_the_next_run(
        tmp_path: Path, node: FakeNode, stop_at: int) -> None:
    node.fail_restart_at = stop_at
    with pytest.raises(MicrokubeError):
        _rotation(tmp_path, node).run()
    stopped_at = rotation.stage(tmp_path / "rot.json")
    assert stopped_at == rotation.STAGES[[0, 0, 1, 3][stop_at]]
    node.fail_restart_at = None
    node.restart()  # the node stopped and started with whatever config was on disk
    new = _rotation(tmp_path, node).run()
    assert [k.name for k in encryption.read_keys(node.config)] == [new]
    assert set(node.secrets.values()) == {new}
    assert rotation.stage(tmp_path / "rot.json") == rotation.IDLE


def test_the_old_key_stays_while_a_secret_is_not_converted(tmp_path: Path,
                                                           node: FakeNode) -> None:
    node.reencrypt = lambda: None  # type: ignore[method-assign]
    with pytest.raises(MicrokubeError, match="still not under key"):
        _rotation(tmp_path, node).run()
    assert "key-old" in [k.name for k in encryption.read_keys(node.config)]
    assert rotation.stage(tmp_path / "rot.json") == "reencrypt"
