"""The agent types of S1, each a declared set of capabilities over a validated config."""
