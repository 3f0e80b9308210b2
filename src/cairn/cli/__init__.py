"""The ``cairn`` command line: one module per command group."""
