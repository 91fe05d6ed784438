"""Tools for running the system on one machine: the embedded PostgreSQL's command (``devdb``), the whole system
started for tests, benchmarks and chaos (``launcher``), free ports (``ports``), the one health wait every runner
uses (``health``), a runner's stop (``processes``) and the banner ``make run`` prints (``banner``).

The apps never import this package; it may import anything of the project but the tests.
"""
