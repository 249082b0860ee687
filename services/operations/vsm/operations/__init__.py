"""vsm operations (S1): the agent registry and the agents that do the work."""
