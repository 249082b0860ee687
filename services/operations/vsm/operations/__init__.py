"""vsm operations (S1): the agents that do the work."""
