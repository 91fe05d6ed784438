"""Real Dapr for this project: find or build daprd, placement, scheduler and sentry of one pinned 1.18 release
(``python -m realdapr install``, what ``make dapr`` runs) and run the system on them as production does, with mTLS,
the access policies and signed workflow history (``python -m realdapr run -f dapr.yaml``, what ``make run-dapr``
runs).

Nothing of Dapr is vendored: the binaries come from an install the user already has or are built from
Dapr's own Go modules, fetched by name from the Go module proxy, into a cache outside the repository.
Modules: ``binaries`` (finding them), ``build`` (building them), ``ports``, ``resources`` and ``trust`` (what a
run needs before it starts), ``commands`` (the command lines), ``run`` (starting, waiting for and stopping them),
``failures`` (why a process did not start), ``watchdog`` (restarting a daprd that stays wedged), ``options`` (the
command-line options it shares with ``realdapr.cluster``).
"""

# The newest 1.18 patch whose whole dependency graph the Go module proxy serves (see README, "Running
# on real Dapr": v1.18.3 needs durabletask-go v0.12.4, which the proxy refuses).
DAPR_VERSION = "1.18.2"


class RunError(Exception):
    """A run cannot start. The message says what to do; nothing is left running."""
