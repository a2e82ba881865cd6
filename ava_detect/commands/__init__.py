"""One module per ``ava-detect`` command: ``add_arguments(parser)`` and ``run(args) -> int``."""
