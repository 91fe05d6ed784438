"""``python -m sidecar serve|run``: see ``sidecar.cli``."""

import os

# The supervisor starts each app with a pre-exec hook (its parent-death signal), which needs a real fork();
# gRPC's fork handlers would then print "Other threads are currently calling into gRPC, skipping fork()
# handlers" at every start. Nothing forked here runs gRPC before it execs, so they are not needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from .cli import main  # after the setting above, which gRPC reads when it loads

if __name__ == "__main__":
    raise SystemExit(main())
