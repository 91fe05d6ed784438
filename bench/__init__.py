"""Benchmarks: scripts that print figures side by side with a baseline measured in the same run, never timed
tests. ``python -m bench.engines`` (``make bench``): the workflow engines under N workflows of K cross-app
activities: the sidecar, durabletask's in-memory backend and real daprd.
"""
