"""The pinned upstream components: manifest, build, cache, versions.

``python -m microkube.components build`` builds every component listed in
components/components.yaml from the Go module proxy into a per-component
cache and installs the binaries into the snap tree.
"""
