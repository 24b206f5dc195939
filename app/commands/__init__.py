"""CLI subcommands: each module has ``register(subparsers)`` and sets ``func`` to its runner."""
