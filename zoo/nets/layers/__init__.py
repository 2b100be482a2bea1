"""Graph operators used by the zoo's networks, one per file."""
