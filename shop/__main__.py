"""``python -m shop``: the same as the ``shop`` command."""

import sys

from shop.cli import main

sys.exit(main())
