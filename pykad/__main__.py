"""``python -m pykad`` runs the command line."""

from pykad.cli import main

main()
