"""The ``ws`` command line (click). Entry point: :func:`ws.cli.main.main`."""
