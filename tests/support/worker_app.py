"""A workflow worker for the sidecar engine tests: one process per worker, run by path with
``--app APP_ID --port GRPC_PORT --name WORKER_NAME``; it talks to the sidecar only through the SDK.

Every activity appends a JSON line ``{"worker", "app", "activity", "key", "phase"}`` to the file named
by ``ENGINE_TEST_LOG`` so tests can see which worker ran what, and how often. ``--skip NAME`` leaves a
workflow or activity unregistered (a target app that runs but lacks it). ``--unpatched`` runs ``patched``
as its code was before the ``ctx.is_patched("p")`` check was added (a redeployment that lost a patch).
``--versions v1,v2`` registers those versions of the ``versioned`` workflow, the last one as the latest.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import threading
import time
from datetime import UTC, timedelta
from pathlib import Path

import dapr.ext.workflow as wf
from dapr.ext.workflow._durabletask.task import TaskFailedError

APP = ""
WORKER = ""
UNPATCHED = False


def _report(activity: str, key: object, phase: str = "ran") -> None:
    line = json.dumps({"worker": WORKER, "app": APP, "activity": activity, "key": key, "phase": phase})
    # One small O_APPEND write per line: lines from several worker processes never interleave.
    with open(os.environ["ENGINE_TEST_LOG"], "a") as log:
        log.write(line + "\n")


# ---------------------------------------------------------------------------------------- activities


def whoami(ctx: wf.WorkflowActivityContext, key: object = None) -> dict:
    _report("whoami", key)
    return {"app": APP, "worker": WORKER, "caller": ctx.workflow_id}


def square(ctx: wf.WorkflowActivityContext, n: int) -> int:
    _report("square", f"{ctx.workflow_id}:{n}")
    time.sleep(0.01)  # long enough that one worker cannot drain the whole fan-out alone
    return n * n


def slow(ctx: wf.WorkflowActivityContext, inp: dict) -> str:
    _report("slow", inp["key"], "start")
    time.sleep(inp["seconds"])
    _report("slow", inp["key"], "end")
    return f"{inp['key']} done by {APP}"


def _seen(history) -> dict | None:
    """What a propagated history held: its scope and, per workflow chunk, who ran it and its event kinds."""
    if history is None:
        return None
    return {
        "scope": history.scope.name,
        "workflows": [
            {
                "app": w.app_id,
                "instance": w.instance_id,
                "name": w.name,
                "events": [e.WhichOneof("eventType") for e in history.get_events_by_instance_id(w.instance_id)],
            }
            for w in history.get_workflows()
        ],
    }


def seen_history(ctx: wf.WorkflowActivityContext, inp=None) -> dict | None:
    return _seen(ctx.get_propagated_history())


def flaky(ctx: wf.WorkflowActivityContext, inp: dict) -> int:
    """Fails ``fail_times`` times for a key, then succeeds; the attempt count lives in a file."""
    counter = Path(os.environ["ENGINE_TEST_DIR"]) / f"attempts-{inp['key']}"
    with open(counter, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # the app's other worker may hold the next attempt
        f.seek(0)
        attempt = int(f.read() or 0) + 1
        f.seek(0)
        f.truncate()
        f.write(str(attempt))
    _report("flaky", inp["key"])
    if attempt <= inp["fail_times"]:
        raise ValueError(f"attempt {attempt} failed")
    return attempt


# ----------------------------------------------------------------------------------------- workflows


def call_on(ctx: wf.DaprWorkflowContext, inp: dict):
    """Calls ``inp["name"]`` (an activity, or a child workflow when ``kind`` is "child") on ``app``;
    with ``catch`` the task failure comes back as a value instead of failing this workflow."""
    try:
        if inp.get("kind") == "child":
            task = ctx.call_child_workflow(
                inp["name"], input=inp.get("input"), app_id=inp["app"], instance_id=f"{ctx.instance_id}-child"
            )
        else:
            task = ctx.call_activity(inp["name"], input=inp.get("input"), app_id=inp["app"])
        return (yield task)
    except TaskFailedError as exc:
        if not inp.get("catch"):
            raise
        return {"error_type": exc.details.error_type, "message": exc.details.message}


def relay(ctx: wf.DaprWorkflowContext, inp: dict):
    """Hands itself on as a child workflow along ``path``; the last hop calls ``whoami`` on
    ``activity_app``. Returns the apps the relay went through, then where the activity ran."""
    trail = [*inp.get("trail", []), APP]
    if inp["path"]:
        nxt = {"path": inp["path"][1:], "trail": trail, "activity_app": inp["activity_app"]}
        return (
            yield ctx.call_child_workflow(
                "relay", input=nxt, app_id=inp["path"][0], instance_id=f"{ctx.instance_id}>{inp['path'][0]}"
            )
        )
    found = yield ctx.call_activity("whoami", input=ctx.instance_id, app_id=inp["activity_app"])
    return [*trail, f"activity@{found['app']}"]


def wait_event(ctx: wf.DaprWorkflowContext, inp=None):
    ctx.set_custom_status("waiting")
    value = yield ctx.wait_for_external_event("go")
    ctx.set_custom_status("done")
    return {"got": value}


def parent_of_waiter(ctx: wf.DaprWorkflowContext, inp: dict):
    """A line of children along ``inp["apps"]``, each with instance ID ``<parent ID>-child``; the last
    one is a ``wait_event``."""
    apps = inp["apps"]
    child_id = f"{ctx.instance_id}-child"
    if len(apps) > 1:
        return (
            yield ctx.call_child_workflow(
                "parent_of_waiter", input={"apps": apps[1:]}, app_id=apps[0], instance_id=child_id
            )
        )
    return (yield ctx.call_child_workflow("wait_event", app_id=apps[0], instance_id=child_id))


def flaky_child(ctx: wf.DaprWorkflowContext, inp: dict):
    """Fails (as a workflow) while its ``flaky`` activity fails: a child for a child retry policy."""
    return (yield ctx.call_activity("flaky", input=inp))


def child_retrying(ctx: wf.DaprWorkflowContext, inp: dict):
    policy = wf.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=inp["max_attempts"]
    )
    return (
        yield ctx.call_child_workflow(
            "flaky_child", input=inp, app_id=inp["app"], instance_id=f"{ctx.instance_id}-child", retry_policy=policy
        )
    )


def gather(ctx: wf.DaprWorkflowContext, inp: dict):
    """Takes one "item" event per generation and continues as new, keeping unprocessed events."""
    items = [*inp["items"], (yield ctx.wait_for_external_event("item"))]
    if len(items) < inp["count"]:
        ctx.continue_as_new({"items": items, "count": inp["count"]}, save_events=True)
        return None
    return items


def collect(ctx: wf.DaprWorkflowContext, count: int):
    items = []
    for _ in range(count):
        items.append((yield ctx.wait_for_external_event("item")))
    return items


def wait_after_timer(ctx: wf.DaprWorkflowContext, inp=None):
    """Waits for "early" only after a 1 s timer, so an event raised at start arrives before the wait."""
    yield ctx.create_timer(timedelta(seconds=1))
    return (yield ctx.wait_for_external_event("early"))


def wait_with_timeout(ctx: wf.DaprWorkflowContext, seconds: float):
    try:
        return (yield ctx.wait_for_external_event("never", timeout=timedelta(seconds=seconds)))
    except TimeoutError:
        return "timed out"


def retrying(ctx: wf.DaprWorkflowContext, inp: dict):
    policy = wf.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=inp["max_attempts"]
    )
    return (yield ctx.call_activity("flaky", input=inp, app_id=inp["app"], retry_policy=policy))


def fan_out(ctx: wf.DaprWorkflowContext, inp: dict):
    tasks = [ctx.call_activity("square", input=i, app_id=inp["app"]) for i in range(inp["count"])]
    return sum((yield wf.when_all(tasks)))


def race(ctx: wf.DaprWorkflowContext, inp: dict):
    """An activity sleeping ``activity_seconds`` against a timer of ``timer_seconds``: who won."""
    activity = ctx.call_activity("slow", input={"key": ctx.instance_id, "seconds": inp["activity_seconds"]})
    timer = ctx.create_timer(timedelta(seconds=inp["timer_seconds"]))
    winner = yield wf.when_any([activity, timer])
    return "timer" if winner is timer else activity.get_result()


def counter(ctx: wf.DaprWorkflowContext, inp: dict):
    if inp["n"] < inp["target"]:
        ctx.continue_as_new({"n": inp["n"] + 1, "target": inp["target"], "runs": [*inp["runs"], ctx.instance_id]})
        return None
    return {"n": inp["n"], "runs": len(inp["runs"])}


def clock(ctx: wf.DaprWorkflowContext, inp=None):
    """Returns its input and the workflow clock when it first ran."""
    # The SDK's clock is a naive datetime in UTC.
    return {"input": inp, "now": ctx.current_utc_datetime.replace(tzinfo=UTC).timestamp()}


def patched(ctx: wf.DaprWorkflowContext, inp=None):
    """Takes the "new" path behind patch "p" (the old path without ``--unpatched``), then waits for "go"."""
    path = "new" if not UNPATCHED and ctx.is_patched("p") else "old"
    got = yield ctx.wait_for_external_event("go")
    return {"path": path, "got": got}


def propagate(ctx: wf.DaprWorkflowContext, inp: dict):
    """Along ``hops`` (app IDs), each hop a child workflow started with propagation ``scope``; the last hop
    calls ``seen_history`` on ``activity_app`` with it. Returns what each hop, then the activity, received.
    With ``warm_up`` each hop first runs ``whoami`` (without propagation); ``child`` names the child workflow."""
    scope = wf.PropagationScope[inp["scope"]] if inp["scope"] else None
    seen = [_seen(ctx.get_propagated_history())]
    if inp.get("warm_up"):  # one more turn in this hop's history before it calls on
        yield ctx.call_activity("whoami", input=ctx.instance_id)
    if inp["hops"]:
        nxt = {**inp, "hops": inp["hops"][1:]}
        return seen + (
            yield ctx.call_child_workflow(
                inp.get("child", "propagate"),
                input=nxt,
                app_id=inp["hops"][0],
                instance_id=f"{ctx.instance_id}>{inp['hops'][0]}",
                propagation=scope,
            )
        )
    return [*seen, (yield ctx.call_activity("seen_history", app_id=inp["activity_app"], propagation=scope))]


def _versioned(version: str):
    def versioned(ctx: wf.DaprWorkflowContext, inp=None):
        got = yield ctx.wait_for_external_event("go")
        return {"version": version, "got": got}

    return versioned


def generations(ctx: wf.DaprWorkflowContext, inp: dict):
    """Continues as new once, then calls ``seen_history`` (LINEAGE); returns what each generation, then the
    activity, received."""
    seen = [*inp.get("seen", []), _seen(ctx.get_propagated_history())]
    if len(seen) < 2:
        ctx.continue_as_new({"seen": seen})
        return None
    return [*seen, (yield ctx.call_activity("seen_history", propagation=wf.PropagationScope.LINEAGE))]


def durable(ctx: wf.DaprWorkflowContext, inp: dict):
    """A slow activity on ``app``, then a timer: the two places the sidecar-kill test strikes."""
    result = yield ctx.call_activity("slow", input={"key": inp["key"], "seconds": inp["seconds"]}, app_id=inp["app"])
    ctx.set_custom_status("timer")
    yield ctx.create_timer(timedelta(seconds=inp["timer_seconds"]))
    return result


WORKFLOWS = [
    call_on,
    relay,
    wait_event,
    parent_of_waiter,
    flaky_child,
    child_retrying,
    gather,
    collect,
    wait_after_timer,
    wait_with_timeout,
    retrying,
    fan_out,
    race,
    counter,
    clock,
    durable,
    patched,
    propagate,
    generations,
]
ACTIVITIES = [whoami, square, slow, flaky, seen_history]


def main() -> None:
    global APP, WORKER, UNPATCHED
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--skip", action="append", default=[])
    parser.add_argument("--unpatched", action="store_true")
    parser.add_argument("--versions", default="")
    args = parser.parse_args()
    APP, WORKER, UNPATCHED = args.app, args.name, args.unpatched
    runtime = wf.WorkflowRuntime(host="127.0.0.1", port=args.port)
    for fn in WORKFLOWS:
        if fn.__name__ not in args.skip:
            runtime.register_workflow(fn)
    for fn in ACTIVITIES:
        if fn.__name__ not in args.skip:
            runtime.register_activity(fn)
    versions = [v for v in args.versions.split(",") if v]
    for version in versions:
        runtime.register_versioned_workflow(
            _versioned(version), name="versioned", version_name=version, is_latest=version == versions[-1]
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime.start()
    Path(os.environ["ENGINE_TEST_DIR"], f"{WORKER}.ready").touch()
    stop.wait()
    runtime.shutdown()


if __name__ == "__main__":
    main()
