"""Benchmarks: scripts that print figures side by side with a baseline measured in the same run, never timed
tests. ``python -m bench.engines`` (``make bench``): the workflow engines under N workflows of K cross-app
activities: the sidecar, durabletask's in-memory backend and real daprd. ``python -m bench.system``
(``make bench-system``): the whole system beside an engine-free saga. ``python -m bench.db``: one transaction's
client CPU by each way to PostgreSQL.

Shared by them: ``processes`` (starting and stopping what they measure), ``sampling`` (its CPU and memory),
``stats`` (percentiles, ratios), ``report`` (the tables); ``deployments`` holds the engine benchmark's three.
"""
