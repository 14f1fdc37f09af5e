"""Subcommands of the esc-bench CLI: each module has configure(parser) and run(args)."""
