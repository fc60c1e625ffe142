"""`python -m qa` runs the CLI."""

from qa.cli.main import main

main()
