"""``python -m ws``: the CLI, for processes ws starts itself (the network guard) without relying on PATH."""

from ws.cli.main import main

main()
