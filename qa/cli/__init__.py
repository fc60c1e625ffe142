"""The `qa` command: parse, call the core, render."""
