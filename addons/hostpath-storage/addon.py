"""hostpath-storage: a default StorageClass whose volumes are folders in SNAP_COMMON."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from microkube.addons.context import AddonContext
from microkube.images.names import BUSYBOX_IMAGE

STORAGE_CLASS = "microkube-hostpath"
PROVISIONER = "microkube.io/hostpath"


def storage_dir(ctx: AddonContext) -> Path:
    return ctx.paths.common / "default-storage"


def _values(ctx: AddonContext) -> dict[str, Any]:
    return {"storage_dir": str(storage_dir(ctx)), "storage_class": STORAGE_CLASS,
            "provisioner": PROVISIONER, "busybox_image": BUSYBOX_IMAGE}


def enable(ctx: AddonContext) -> None:
    storage_dir(ctx).mkdir(parents=True, exist_ok=True)
    ctx.apply(ctx.manifest(**_values(ctx)))
    ctx.wait_rollout("deployment/hostpath-provisioner", "kube-system")
    ctx.say(f"storage class {STORAGE_CLASS} (default) keeps volumes in {storage_dir(ctx)}")


def disable(ctx: AddonContext) -> None:
    in_use = _volumes(ctx)
    ctx.delete(ctx.made_objects(**_values(ctx)))
    folder = storage_dir(ctx)
    if ctx.args.get("destroy-storage"):
        shutil.rmtree(folder, ignore_errors=True)
        ctx.say(f"deleted the volumes' data in {folder}")
        return
    note = f" ({len(in_use)} persistent volumes still refer to it)" if in_use else ""
    ctx.say(f"kept the volumes' data in {folder}{note}; "
            "'disable hostpath-storage --destroy-storage' deletes it")


def _volumes(ctx: AddonContext) -> list[str]:
    pvs = ctx.kubectl.get_json("persistentvolumes")
    return [pv["metadata"]["name"] for pv in pvs.get("items", [])
            if pv.get("spec", {}).get("storageClassName") == STORAGE_CLASS]
