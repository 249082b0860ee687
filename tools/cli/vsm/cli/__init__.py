"""vsm: the command-line tool for operators of a running viable system."""
