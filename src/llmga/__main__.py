"""``python -m llmga`` runs the ``llmga`` command."""

from .cli import main

main()
