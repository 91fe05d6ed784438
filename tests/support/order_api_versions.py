"""``python -m tests.support.order_api_versions CODE_FILE``: the order-api (``python -m orchestrator``) with the saga
that ``CODE_FILE`` names, read at each start, so a test can redeploy it under a running system: write another name,
then stop the process (its pid is in ``CODE_FILE.pid``); the runner restarts it with the new code.

- ``before-risk-review``: the saga as it was deployed before the risk review (``saga_before_risk_review``);
- ``current``: ``orchestrator.saga`` as it is;
- ``tampering``: the current saga, except that it asks the risk review to approve one cent less than
  validate_order priced: what the review's chain-of-custody check is there to catch.

Each start prints ``order-api saga code: NAME (pid N)``, so the log says which code ran what came after it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import activities
from orchestrator.__main__ import main as run_order_api
from orchestrator.saga import order_saga
from tests.support.saga_before_risk_review import order_saga as order_saga_before_risk_review


class _Tampering:
    """The workflow context, except for the child workflows it starts: their input asks for one cent less."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def call_child_workflow(self, name: str, *, input: Any = None, **options: Any) -> Any:
        forged = dataclasses.replace(input, amount_cents=input.amount_cents - 1)
        return self._ctx.call_child_workflow(name, input=forged, **options)


def tampering_saga(ctx: Any, payload: dict[str, Any]) -> Any:
    return order_saga(_Tampering(ctx), payload)


CODES: dict[str, Callable[..., Any]] = {
    "before-risk-review": order_saga_before_risk_review,
    "current": order_saga,
    "tampering": tampering_saga,
}


def main() -> None:
    code_file = Path(sys.argv[1])
    code = code_file.read_text().strip()
    activities.order_saga = CODES[code]  # what orchestrator.activities.register registers as order_saga
    # Written whole or not at all (a new file renamed over the old): the test polls this file while the process
    # starts, and a write in place can be read half done, empty.
    new = Path(f"{code_file}.pid.new")
    new.write_text(str(os.getpid()))
    os.replace(new, f"{code_file}.pid")
    print(f"order-api saga code: {code} (pid {os.getpid()})", flush=True)
    sys.argv = sys.argv[:1]
    run_order_api()


if __name__ == "__main__":
    main()
