"""Organisation files: a viable system declared in YAML, diffed and applied."""
