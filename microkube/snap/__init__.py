"""The snap: reading snapcraft.yaml, assembling and packing the tree, and the hooks."""
