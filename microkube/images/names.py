"""The names of the images microkube builds: cheap to import, for config and tests."""

REGISTRY = "microkube.local"

PAUSE_VERSION = "3.10"
PAUSE_IMAGE = f"{REGISTRY}/pause:{PAUSE_VERSION}"

# Debian bookworm's busybox-static; the tag is the upstream major.minor.
BUSYBOX_VERSION = "1.35"
BUSYBOX_IMAGE = f"{REGISTRY}/busybox:{BUSYBOX_VERSION}"
