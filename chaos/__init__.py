"""``python -m chaos`` (``make chaos``): the whole system under a seeded mixed workload while faults, kills and
restarts are injected at random, then checked for lost, stuck, double-charged or half-undone orders."""
