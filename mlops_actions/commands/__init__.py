"""CLI commands: one module per command group, each with ``add_parser(subparsers)``."""
