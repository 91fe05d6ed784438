"""shipping: schedules and cancels shipments (with deterministic tracking numbers) in its own database."""
