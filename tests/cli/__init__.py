"""The command line: errors, hostile arguments, console drift seen through the CLI."""
