"""An app outside every access policy, for the end-to-end lanes: run by path as app ``intruder`` (its own app ID, its
own daprd or sidecar listener, no HTTP API). Its one workflow, ``intrude``, schedules an activity of another app
(``{"app": "payment", "activity": "charge"}``, say) with the contract's own input, as the order-api's saga would, and
returns how it went: the activity's result, or the failure it got (``error_type`` and ``message``)."""

from __future__ import annotations

import time
from typing import Any

import dapr.ext.workflow as wf
from dapr.ext.workflow._durabletask.task import TaskFailedError

from common.contracts import ChargeInput, UndoInput


def _input(activity: str, order_id: str) -> Any:
    if activity == "charge":
        return ChargeInput(order_id, "intruder", 1, "tok_visa", f"{order_id}:charge")
    return UndoInput(order_id, f"{order_id}:{activity}")


def intrude(ctx: wf.DaprWorkflowContext, target: dict[str, str]) -> Any:
    try:
        result = yield ctx.call_activity(
            target["activity"], input=_input(target["activity"], target["order_id"]), app_id=target["app"]
        )
    except TaskFailedError as failed:
        details = failed.details
        return {"error_type": details.error_type, "message": details.message}
    return {"result": result}


def main() -> None:
    runtime = wf.WorkflowRuntime()
    runtime.register_workflow(intrude, name="intrude")
    runtime.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
