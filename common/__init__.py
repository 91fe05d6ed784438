"""The shared library of all apps: contracts, settings, database set-up, idempotency, faults, problem details.

Services import ``common``; ``common`` never imports a service. Import the submodules directly.
"""
