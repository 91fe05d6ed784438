"""inventory: the product catalog, order validation and stock reservations, in its own database."""
