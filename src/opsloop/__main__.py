"""``python -m opsloop`` runs the command line."""

from opsloop.cli.app import main

if __name__ == "__main__":
    main()
