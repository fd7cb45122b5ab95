"""Recipes for the pod images microkube ships: what goes into each image.

A recipe names its inputs cheaply (``inputs``: source bytes, tool versions)
so the builder can key its cache on them, and only then does the expensive
part (``assemble``: compile, collect files) when the cache misses.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.images.names import (
    BUSYBOX_VERSION,
    PAUSE_VERSION,
    REGISTRY,
)
from microkube.images.oci import ImageConfig, Layer
from microkube.paths import CHECKOUT
from microkube.proc import failure_line

PAUSE_SOURCE = CHECKOUT / "components" / "pause" / "pause.c"
# The upstream pause image runs as this user; nothing in a sandbox needs root.
PAUSE_USER = "65535:65535"

BUSYBOX_BINARY = Path("/bin/busybox")
BUSYBOX_COPYRIGHT = Path("/usr/share/doc/busybox-static/copyright")
BUSYBOX_INSTALL_HINT = "apt-get install busybox-static"
# Applets tests and addons rely on; the build fails if the binary lacks one.
BUSYBOX_REQUIRED_APPLETS = (
    "sh", "httpd", "nslookup", "wget", "cat", "echo", "ls", "sleep", "hostname", "ip",
    "ifconfig", "ping", "mkdir", "rm", "env", "ps", "true", "false", "test", "date",
    "grep", "head", "tail", "nc",
)  # fmt: skip

ETC_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
ETC_GROUP = "root:x:0:\nnobody:x:65534:\n"


@dataclass(frozen=True)
class Assembled:
    """An image ready to be written."""

    layers: list[Layer]
    config: ImageConfig
    history: list[str]


class Recipe(ABC):
    """One image: a name, a tag, its inputs and how to assemble it."""

    name: str
    tag: str

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/{self.name}:{self.tag}"

    @abstractmethod
    def inputs(self) -> list[tuple[str, bytes]]:
        """Everything the image is made from, as (label, bytes): the cache key."""

    @abstractmethod
    def assemble(self, workdir: Path) -> Assembled:
        """Build the image's layers; ``workdir`` is a scratch directory."""


def _run(argv: list[str], what: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MicrokubeError(f"{what}: {argv[0]} not found") from None
    if proc.returncode != 0:
        raise MicrokubeError(f"{what} failed: {failure_line(proc)}")
    return proc.stdout


def _read(path: Path, hint: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise MicrokubeError(f"cannot read {path} ({hint}): {e.strerror}") from e


def has_interpreter(elf: bytes) -> bool:
    """True for a dynamically linked ELF64 (it names a program interpreter)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise MicrokubeError("not a 64-bit ELF executable")
    endian = "<" if elf[5] == 1 else ">"
    (phoff,) = struct.unpack_from(endian + "Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from(endian + "HH", elf, 0x36)
    pt_interp = 3
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", elf, phoff + i * phentsize)
        if p_type == pt_interp:
            return True
    return False


class PauseRecipe(Recipe):
    """Our own pause (components/pause/pause.c), compiled static."""

    name = "pause"
    tag = PAUSE_VERSION

    def __init__(self, source: Path = PAUSE_SOURCE, compiler: str = "gcc") -> None:
        self.source = source
        self.compiler = compiler

    def _compile_argv(self, output: Path) -> list[str]:
        return [
            self.compiler, "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror",
            f'-DPAUSE_VERSION="{self.tag}"', "-o", str(output), str(self.source),
        ]  # fmt: skip

    def _toolchain(self) -> list[tuple[str, bytes]]:
        if shutil.which(self.compiler) is None:
            raise MicrokubeError(
                f"{self.compiler} not found (pause needs it): apt-get install gcc libc6-dev"
            )
        version = _run([self.compiler, "--version"], "reading the compiler version")
        libc = Path(_run([self.compiler, "-print-file-name=libc.a"], "finding libc.a").strip())
        if not libc.is_absolute():
            raise MicrokubeError("static libc (libc.a) not found: apt-get install libc6-dev")
        return [
            ("compiler", version.splitlines()[0].encode()),
            ("libc.a", _read(libc, "static libc")),
        ]

    def inputs(self) -> list[tuple[str, bytes]]:
        return [
            ("pause.c", _read(self.source, "pause source")),
            ("argv", " ".join(self._compile_argv(Path("pause"))[1:-3]).encode()),
            *self._toolchain(),
        ]

    def assemble(self, workdir: Path) -> Assembled:
        binary = workdir / "pause"
        _run(self._compile_argv(binary), "compiling pause")
        layer = Layer()
        layer.add_file("/pause", binary, 0o755)
        config = ImageConfig(entrypoint=["/pause"], user=PAUSE_USER)
        return Assembled([layer], config, [f"pause {self.tag}: static build of pause.c"])


class BusyboxRecipe(Recipe):
    """Debian's static busybox with its applet links and a minimal /etc."""

    name = "busybox"
    tag = BUSYBOX_VERSION

    def __init__(
        self, binary: Path = BUSYBOX_BINARY, copyright_file: Path = BUSYBOX_COPYRIGHT
    ) -> None:
        self.binary = binary
        self.copyright_file = copyright_file

    def _binary_bytes(self) -> bytes:
        if not self.binary.exists():
            raise MicrokubeError(f"{self.binary} not found: {BUSYBOX_INSTALL_HINT}")
        data = _read(self.binary, BUSYBOX_INSTALL_HINT)
        if has_interpreter(data):
            raise MicrokubeError(
                f"{self.binary} is dynamically linked; the image needs {BUSYBOX_INSTALL_HINT}"
            )
        return data

    def inputs(self) -> list[tuple[str, bytes]]:
        items = [("busybox", self._binary_bytes())]
        if self.copyright_file.exists():
            items.append(("copyright", _read(self.copyright_file, "busybox copyright")))
        return items

    def _version(self) -> str:
        # `busybox --help` starts with "BusyBox v1.35.0 (Debian ...) multi-call binary."
        head = _run([str(self.binary), "--help"], "reading the busybox version")
        match = re.search(r"BusyBox v(\d+)\.(\d+)\.", head)
        if match is None:
            raise MicrokubeError(f"cannot read the version of {self.binary}")
        return f"{match.group(1)}.{match.group(2)}"

    def applets(self) -> list[str]:
        """In-image paths of every applet, e.g. 'bin/sh', 'usr/sbin/httpd'."""
        listing = _run([str(self.binary), "--list-full"], "listing busybox applets")
        paths = [p.strip() for p in listing.splitlines() if "/" in p.strip()]
        names = {p.rsplit("/", 1)[1] for p in paths}
        missing = [a for a in BUSYBOX_REQUIRED_APPLETS if a not in names]
        if missing:
            raise MicrokubeError(f"{self.binary} lacks applets: {', '.join(missing)}")
        return sorted(paths)

    def assemble(self, workdir: Path) -> Assembled:
        version = self._version()
        if version != self.tag:
            raise MicrokubeError(
                f"{self.binary} is busybox {version} but the recipe pins {self.tag}; "
                "update BUSYBOX_VERSION in microkube/images/recipes.py"
            )
        layer = Layer()
        layer.add_bytes("/bin/busybox", self._binary_bytes(), 0o755)
        for path in self.applets():
            if path != "bin/busybox":
                layer.add_symlink(path, "/bin/busybox")
        if self.copyright_file.exists():
            layer.add_file("/usr/share/doc/busybox/copyright", self.copyright_file, 0o644)
        layer.add_bytes("/etc/passwd", ETC_PASSWD.encode(), 0o644)
        layer.add_bytes("/etc/group", ETC_GROUP.encode(), 0o644)
        layer.add_dir("/tmp", 0o1777)
        layer.add_dir("/root", 0o700)
        layer.add_dir("/var/www", 0o755)
        # Like Docker's busybox: no entrypoint, so `kubectl run ... -- sleep 3600`
        # and `ctr run IMAGE ID echo hi` run the command itself; bare runs get a shell.
        config = ImageConfig(cmd=["/bin/sh"])
        return Assembled([layer], config, [f"busybox {version} from Debian's busybox-static"])


def all_recipes() -> list[Recipe]:
    """Every image the snap ships, in build order."""
    return [PauseRecipe(), BusyboxRecipe()]
