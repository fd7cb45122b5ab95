"""Move image archives into and out of containerd, through the bundled ctr.

Images go into the k8s.io namespace, the one the CRI plugin (so the
kubelet) sees. They are labelled as pinned, so the kubelet's image garbage
collection never drops an image that no registry could give back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from microkube.errors import MicrokubeError
from microkube.images.oci import read_archive
from microkube.proc import failure_line

NAMESPACE = "k8s.io"
PINNED_LABEL = "io.cri-containerd.pinned=pinned"
DEFAULT_TIMEOUT = 300.0


def _ctr(
    ctr: Path, socket: Path, namespace: str, args: list[str], what: str, timeout: float
) -> str:
    argv = [str(ctr), "--address", str(socket), "--namespace", namespace, *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise MicrokubeError(f"{what}: {ctr} not found") from None
    except subprocess.TimeoutExpired:
        raise MicrokubeError(f"{what}: ctr did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise MicrokubeError(f"{what}: {failure_line(proc, 'ctr: ')}")
    return proc.stdout


def import_archives(
    ctr: Path,
    socket: Path,
    archives: list[Path],
    *,
    namespace: str = NAMESPACE,
    snapshotter: str | None = None,
    pinned: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Import OCI archives; each image is named by its io.containerd.image.name.

    Only the host platform is imported and unpacked (our archives hold just
    that one), into ``snapshotter`` or containerd's default.
    """
    for archive in archives:
        if not archive.is_file():
            raise MicrokubeError(f"image archive not found: {archive}")
        args = ["images", "import"]
        if snapshotter:
            args += ["--snapshotter", snapshotter]
        if pinned:
            args += ["--label", PINNED_LABEL]
        _ctr(ctr, socket, namespace, [*args, str(archive)], f"importing {archive.name}", timeout)


def list_images(
    ctr: Path, socket: Path, *, namespace: str = NAMESPACE, timeout: float = DEFAULT_TIMEOUT
) -> list[str]:
    """Names of the images containerd holds in ``namespace``."""
    out = _ctr(ctr, socket, namespace, ["images", "list", "--quiet"], "listing images", timeout)
    return [line.strip() for line in out.splitlines() if line.strip()]


def image_digests(
    ctr: Path, socket: Path, *, namespace: str = NAMESPACE, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, str]:
    """Image name -> target digest, for the images containerd holds."""
    out = _ctr(ctr, socket, namespace, ["images", "list"], "listing images", timeout)
    digests = {}
    for line in out.splitlines()[1:]:  # REF TYPE DIGEST SIZE PLATFORMS LABELS
        fields = line.split()
        if len(fields) >= 3:
            digests[fields[0]] = fields[2]
    return digests


def import_missing(
    ctr: Path,
    socket: Path,
    archives: list[Path],
    *,
    namespace: str = NAMESPACE,
    snapshotter: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Path]:
    """Import only the archives whose image (name and digest) containerd lacks.

    For node start-up: the shipped images are usually there already, and
    reading an index.json is far cheaper than a ctr import. Returns the
    archives that were imported.
    """
    present = image_digests(ctr, socket, namespace=namespace, timeout=timeout)
    wanted = []
    for archive in archives:
        summary = read_archive(archive)
        if present.get(summary.name) != summary.manifest_digest:
            wanted.append(archive)
    import_archives(
        ctr, socket, wanted, namespace=namespace, snapshotter=snapshotter, timeout=timeout
    )
    return wanted


def export_image(
    ctr: Path,
    socket: Path,
    ref: str,
    dest: Path,
    *,
    namespace: str = NAMESPACE,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Write the image ``ref`` (host platform) as an OCI archive at ``dest``.

    ctr writes to a temporary file beside ``dest`` that is renamed when
    complete, so ``dest`` is never a half-written archive.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        _ctr(
            ctr, socket, namespace, ["images", "export", str(tmp), ref], f"exporting {ref}", timeout
        )
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
