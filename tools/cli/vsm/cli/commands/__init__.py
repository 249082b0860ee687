"""One module per command (group) of `vsm`."""
