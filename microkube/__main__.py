"""``python -m microkube`` runs the CLI."""

from microkube.cli import main

main()
