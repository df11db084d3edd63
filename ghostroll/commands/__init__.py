"""One module per maintenance command of the `ghostroll` CLI."""
