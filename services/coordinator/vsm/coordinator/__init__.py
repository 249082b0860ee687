"""vsm coordinator (S2): fair scheduling and anti-oscillation between S1 units."""
