"""``python -m sidecar serve|run``: see ``sidecar.cli``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
