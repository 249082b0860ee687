"""vsm queen (S5): policy and identity, algedonic signals, viability, interventions."""
