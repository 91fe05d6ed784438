"""One order, one trace: the REST request on the order-api, and each activity of its saga on the app that runs it
(with the SQL it ran), share one trace ID. The apps export to the test's OTLP receiver (tests/otlp.py), as they
would to a collector, with tracing switched on by the standard OTEL_* variables."""

from __future__ import annotations

import time

from tests.support.orders import new_id, order_body
from tests.support.otlp import Receiver, Span

INSTANCE = "dapr.ext.workflow._durabletask.task.instance_id"  # the SDK's attribute on its activity spans


def spans_of(traces: Receiver, order_id: str, timeout: float = 30) -> tuple[list[Span], list[Span]]:
    """The activity spans of the order, and every span of their trace, once the last activity has been exported."""
    deadline = time.monotonic() + timeout
    while True:
        spans = traces.spans()
        activities = [s for s in spans if s.attributes.get(INSTANCE) == order_id]
        if {s.service for s in activities} >= {"inventory", "payment", "shipping", "notification"}:
            trace_ids = {s.trace_id for s in activities}
            return activities, [s for s in spans if s.trace_id in trace_ids]
        if time.monotonic() > deadline:
            raise AssertionError(f"activity spans of {order_id} so far: {[(s.service, s.name) for s in activities]}")
        time.sleep(0.3)


def test_one_trace_follows_an_order_from_its_request_through_every_activity_app(system, traces: Receiver):
    order_id = new_id("traced")
    with system.client("order-api") as api:
        response = api.post("/orders?wait=true", json=order_body(order_id))
    assert response.status_code == 200 and response.json()["status"] == "COMPLETED", response.text

    activities, trace = spans_of(traces, order_id)
    assert len({s.trace_id for s in activities}) == 1, {(s.service, s.name, s.trace_id) for s in activities}
    names = {(s.service, s.name) for s in activities}
    assert {
        ("inventory", "activity: validate_order"),
        ("payment", "activity: charge"),
        ("shipping", "activity: ship"),
        ("notification", "activity: notify"),
    } <= names
    # The trace starts at the REST request, served by the order-api.
    requests = [s for s in trace if s.service == "order-api" and s.name.startswith("POST /orders")]
    assert requests, sorted({(s.service, s.name) for s in trace})
    # Each activity app's SQL is in it too, under its activity.
    activity_ids = {s.span_id for s in activities}
    sql = [s for s in trace if s.attributes.get("db.system") == "postgresql"]
    assert {s.service for s in sql if s.parent_span_id in activity_ids} >= {"inventory", "payment", "shipping"}
    # The order's history names the trace too (what the console shows).
    with system.client("order-api") as api:
        started = next(e for e in api.get(f"/orders/{order_id}/history").json() if e["type"] == "ExecutionStarted")
    assert started["trace_id"] == activities[0].trace_id
    if system.engine == "sidecar":  # daprd puts spans of its own (not exported here) between request and activity
        request_ids = {s.span_id for s in requests}
        assert all(s.parent_span_id in request_ids for s in activities), activities


def test_without_otel_settings_tracing_is_off():
    from common import telemetry

    assert not telemetry.wanted({})
    assert not telemetry.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not telemetry.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert telemetry.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert telemetry.wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert telemetry.trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
