"""Recipes for the addons' images: one Go binary plus a minimal filesystem each.

Every image holds its binary, /etc/passwd and /etc/group with a 'nobody'
user it runs as, and a sticky /tmp. None needs a CA bundle: they talk only
to the API server (service-account CA) and to pods.

Most binaries come from the pinned components (components.yaml, installed
into $SNAP/bin by ``make components``); Traefik and our dashboard are built
here (see gobuild.py). The archives go to $SNAP/images/addons/<name>.tar and
are imported when their addon is enabled, not at node start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.images import gobuild
from microkube.images.oci import ImageConfig, Layer
from microkube.images.recipes import ETC_GROUP, ETC_PASSWD, Assembled, Recipe, _read
from microkube.paths import CHECKOUT

NOBODY = "65534:65534"

# Built here rather than from components.yaml (see gobuild.py for why).
TRAEFIK_MODULE = "github.com/traefik/traefik/v3"
# v3.7.x needs github.com/traefik/traefik/dynamic/ext, a nested module its go.mod
# replaces with a local folder that the module proxy's zip does not contain.
TRAEFIK_VERSION = "v3.6.12"
# v0.16.2 needs github.com/metallb/frr-k8s v0.0.27, which the module proxy does not serve.
METALLB_MODULE = "go.universe.tf/metallb"
METALLB_VERSION = "v0.15.2"
DASHBOARD_SOURCE = CHECKOUT / "components" / "dashboard"
DASHBOARD_VERSION = "0.1.0"


@dataclass
class BinaryImage(Recipe):
    """An image around one static binary at /<binary name> (or ``path``)."""

    name: str  # the Recipe attributes, per instance
    tag: str
    binary: Callable[[], Path]  # where the binary is (may build it)
    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    dirs: dict[str, int] = field(default_factory=dict)  # extra folders and their modes
    history: str = ""

    def _binary_bytes(self) -> bytes:
        path = self.binary()
        return _read(path, f"the {self.name} binary; build it with 'make components'")

    def inputs(self) -> list[tuple[str, bytes]]:
        return [
            ("binary", self._binary_bytes()),
            ("layout", repr((self.entrypoint, self.cmd, sorted(self.dirs.items()))).encode()),
        ]

    def assemble(self, workdir: Path) -> Assembled:
        layer = Layer()
        layer.add_bytes(self.entrypoint[0], self._binary_bytes(), 0o755)
        layer.add_bytes("/etc/passwd", ETC_PASSWD.encode(), 0o644)
        layer.add_bytes("/etc/group", ETC_GROUP.encode(), 0o644)
        layer.add_dir("/tmp", 0o1777)
        for d, mode in sorted(self.dirs.items()):
            layer.add_dir(d, mode)
        config = ImageConfig(entrypoint=self.entrypoint, cmd=self.cmd, user=NOBODY)
        return Assembled([layer], config, [self.history or f"{self.name} {self.tag}"])


def _component_version(name: str) -> str:
    from microkube.components.manifest import load

    return load().get(name).version.removeprefix("v")


def _from_snap(bin_dir: Path, name: str) -> Callable[[], Path]:
    def locate() -> Path:
        path = bin_dir / name
        if not path.exists():
            raise MicrokubeError(f"{path} is missing; build it with 'make components'")
        return path

    return locate


def traefik_binary() -> gobuild.GoBinary:
    pkg = f"{TRAEFIK_MODULE}/pkg/version"
    return gobuild.GoBinary(
        name="traefik", package=f"{TRAEFIK_MODULE}/cmd/traefik", module=TRAEFIK_MODULE,
        version=TRAEFIK_VERSION,
        ldflags=(f"-X {pkg}.Version={TRAEFIK_VERSION}", f"-X {pkg}.Codename=microkube",
                 f"-X {pkg}.BuildDate=1970-01-01T00:00:00Z"),
    )


def metallb_binary(name: str) -> gobuild.GoBinary:
    """MetalLB's ``controller`` or ``speaker`` main, from the pinned module."""
    return gobuild.GoBinary(
        name=f"metallb-{name}", package=f"{METALLB_MODULE}/{name}", module=METALLB_MODULE,
        version=METALLB_VERSION,
        ldflags=(f"-X {METALLB_MODULE}/internal/version.gitBranch={METALLB_VERSION}",))


def dashboard_binary() -> gobuild.GoBinary:
    return gobuild.GoBinary(name="dashboard", package=".", source_dir=DASHBOARD_SOURCE,
                            ldflags=(f"-X main.version={DASHBOARD_VERSION}",))


def _built(binary: gobuild.GoBinary, echo: Callable[[str], None]) -> Callable[[], Path]:
    return lambda: gobuild.build(binary, echo)


def addon_recipes(bin_dir: Path, echo: Callable[[str], None] = print) -> list[BinaryImage]:
    """Every addon image; ``bin_dir`` is the snap's bin/ with the component binaries."""
    return [
        BinaryImage("coredns", _component_version("coredns"), _from_snap(bin_dir, "coredns"),
                    ["/coredns"], history="CoreDNS from components.yaml"),
        BinaryImage("traefik", TRAEFIK_VERSION.removeprefix("v"),
                    _built(traefik_binary(), echo), ["/traefik"],
                    history=f"Traefik {TRAEFIK_VERSION} from {TRAEFIK_MODULE}"),
        BinaryImage("local-path-provisioner", _component_version("local-path-provisioner"),
                    _from_snap(bin_dir, "local-path-provisioner"),
                    ["/usr/bin/local-path-provisioner"],
                    history="local-path-provisioner from components.yaml"),
        BinaryImage("metrics-server", _component_version("metrics-server"),
                    _from_snap(bin_dir, "metrics-server"), ["/metrics-server"],
                    history="metrics-server from components.yaml"),
        BinaryImage("registry", _component_version("registry"), _from_snap(bin_dir, "registry"),
                    ["/bin/registry"], cmd=["serve", "/etc/distribution/config.yml"],
                    dirs={"/var/lib/registry": 0o777},
                    history="CNCF Distribution registry from components.yaml"),
        *(BinaryImage(f"metallb-{part}", METALLB_VERSION.removeprefix("v"),
                      _built(metallb_binary(part), echo), [f"/{part}"],
                      history=f"MetalLB's {part} {METALLB_VERSION} from {METALLB_MODULE}")
          for part in ("controller", "speaker")),
        BinaryImage("dashboard", DASHBOARD_VERSION, _built(dashboard_binary(), echo),
                    ["/dashboard"], history="microkube's dashboard (components/dashboard)"),
    ]
