"""Pod images: OCI archive writing, the image recipes, import and export."""
